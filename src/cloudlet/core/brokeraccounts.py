"""Device logins on the MQTT broker, through Mosquitto's dynamic-security API.

Cloudlet provisions one broker account per device when its owner adds it (user name = the
device id, a role of its own whose ACLs name only that device's topics) and deletes it when the
owner deletes the device. Commands are JSON published to ``$CONTROL/dynamic-security/v1``;
answers come on ``.../response`` with our ``correlationData``. Mosquitto 2.0 substitutes no
``%u`` in these ACLs, hence one role per device with literal topics. The embedded broker
(``core.devicelink``) answers the same commands, so one code path serves both.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from cloudlet.core.devicelink import CONTROL_TOPIC, RESPONSE_TOPIC, LinkClient

log = logging.getLogger("cloudlet.brokeraccounts")

ANSWER_SECONDS = 5.0
# Errors that mean "already as wanted": provisioning is idempotent.
_ALREADY = ("already exists", "not found")


class BrokerAccountsError(Exception):
    """The broker did not carry out an account command (unreachable, refused, no answer)."""


@dataclass(frozen=True)
class TopicRule:
    """One ACL entry: ``acltype`` is Mosquitto's (publishClientSend, subscribeLiteral, ...)."""

    acltype: str
    topic: str
    allow: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow}


def device_role(username: str) -> str:
    return f"cloudlet-device-{username}"


class BrokerAccounts:
    """Dynamic-security commands over an MQTT connection logged in as the broker's admin."""

    def __init__(self, client: LinkClient, *, answer_seconds: float = ANSWER_SECONDS) -> None:
        self.client = client
        self.answer_seconds = answer_seconds
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        client.subscribe(RESPONSE_TOPIC, self._on_response, concurrent=True)

    async def run(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        """Send ``commands`` in one message; their answers, in order (``error`` when refused)."""
        loop = asyncio.get_running_loop()
        tagged: list[dict[str, Any]] = []
        futures: list[asyncio.Future[dict[str, Any]]] = []
        for command in commands:
            tag = uuid.uuid4().hex
            future: asyncio.Future[dict[str, Any]] = loop.create_future()
            self._waiting[tag] = future
            futures.append(future)
            tagged.append(command | {"correlationData": tag})
        try:
            await self.client.publish(CONTROL_TOPIC, orjson.dumps({"commands": tagged}), qos=1)
            return list(await asyncio.wait_for(asyncio.gather(*futures), self.answer_seconds))
        except (ConnectionError, TimeoutError) as exc:
            raise BrokerAccountsError(f"broker accounts: no answer ({exc or 'timeout'})") from exc
        finally:
            for command in tagged:
                self._waiting.pop(command["correlationData"], None)

    async def _on_response(self, _topic: str, payload: bytes) -> None:
        try:
            answer = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        responses = answer.get("responses") if isinstance(answer, dict) else None
        for response in responses if isinstance(responses, list) else []:
            if not isinstance(response, dict):
                continue
            future = self._waiting.get(str(response.get("correlationData", "")))
            if future is not None and not future.done():
                future.set_result(response)

    async def _require(self, *commands: dict[str, Any]) -> list[dict[str, Any]]:
        """Run ``commands``; raise on any error other than "already so"."""
        answers = await self.run(*commands)
        for command, answer in zip(commands, answers, strict=True):
            error = str(answer.get("error", ""))
            if error and not any(mark in error.lower() for mark in _ALREADY):
                raise BrokerAccountsError(f"broker refused {command['command']}: {error}")
        return answers

    async def _ensure_role(self, role: str, acls: list[dict[str, Any]]) -> bool:
        """Make ``role`` carry exactly ``acls``; whether it changed. Mosquitto disconnects
        every client holding a role it modifies, so an unchanged role is left alone."""
        created, current = await self._require(
            {"command": "createRole", "rolename": role, "acls": acls},
            {"command": "getRole", "rolename": role},
        )
        if not created.get("error"):
            return True
        role_data = current.get("data", {}).get("role", {})
        have = {_acl_key(acl) for acl in role_data.get("acls", []) if isinstance(acl, dict)}
        if have == {_acl_key(acl) for acl in acls}:
            return False
        await self._require({"command": "modifyRole", "rolename": role, "acls": acls})
        return True

    async def _ensure_client_role(self, username: str, role: str) -> bool:
        """Add ``role`` to an existing account (its other roles kept); whether it changed."""
        (answer,) = await self._require({"command": "getClient", "username": username})
        client = answer.get("data", {}).get("client")
        if not isinstance(client, dict):
            raise BrokerAccountsError(f"broker accounts: no account {username}")
        roles = [r for r in client.get("roles", []) if isinstance(r, dict)]
        if any(r.get("rolename") == role for r in roles):
            return False
        # modifyClient sets the role list (Mosquitto 2.0 answers addClientRole with
        # "Internal error" when the client already has the role).
        await self._require(
            {"command": "modifyClient", "username": username, "roles": [*roles, {"rolename": role}]}
        )
        return True

    async def grant(self, username: str, password: str, rules: list[TopicRule]) -> None:
        """Let ``username`` log in with ``password`` and use exactly ``rules``. An existing
        account gets the password again (Mosquitto then disconnects its sessions, as it does
        for every password change)."""
        role = device_role(username)
        await self._ensure_role(role, [rule.as_json() for rule in rules])
        (created,) = await self._require(
            {
                "command": "createClient",
                "username": username,
                "password": password,
                "roles": [{"rolename": role}],
            }
        )
        if not created.get("error"):
            return
        await self._ensure_client_role(username, role)
        await self._require(
            {"command": "setClientPassword", "username": username, "password": password}
        )

    async def revoke(self, username: str) -> None:
        """Delete ``username``'s account and role; the broker disconnects its sessions."""
        await self._require(
            {"command": "deleteClient", "username": username},
            {"command": "deleteRole", "rolename": device_role(username)},
        )

    async def allow_service(self, username: str, role: str, rules: list[TopicRule]) -> bool:
        """Give our own account (the broker's admin) ``rules`` through ``role``; whether
        anything changed (then Mosquitto has disconnected us: we reconnect and check again)."""
        changed = await self._ensure_role(role, [rule.as_json() for rule in rules])
        return await self._ensure_client_role(username, role) or changed


def _acl_key(acl: dict[str, Any]) -> tuple[str, str, bool]:
    return (str(acl.get("acltype")), str(acl.get("topic")), bool(acl.get("allow")))
