"""Home Assistant MQTT discovery: the bridge that publishes what the families declare.

Each family declares its entities as an ``EntitySource`` (``Family.homeassistant``, e.g.
``scale/homeassistant.py``). The bridge reads them every ``poll_seconds`` (so whichever
worker stored a record or a controller report, every worker publishes the same retained
messages), publishes only what changed, clears what is gone, and hands Home Assistant's
commands to the family that declared them. See docs/integrations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cloudlet.core.devicelink import BrokerAddress, LinkClient, Realm, Will
from cloudlet.core.observability import FaultLog
from cloudlet.core.security import constant_time_equals
from cloudlet.core.services import Services
from cloudlet.integrations.discovery import (
    OFFLINE,
    ONLINE,
    Command,
    CommandHandler,
    EntitySource,
    Messages,
    Topics,
)

if TYPE_CHECKING:
    from cloudlet.core.family import Family

log = logging.getLogger("cloudlet.homeassistant")
FAULTS = FaultLog(log)  # one traceback per kind of failure a minute

EXTRA_KEY = "homeassistant"
STOP_WAIT_SECONDS = 5.0
# How long start() waits for the broker before serving anyway (it keeps retrying).
BROKER_WAIT_SECONDS = 5.0
# The bridge's listener on the process's embedded broker.
LISTENER = "homeassistant"


# --- the bridge ---------------------------------------------------------------------------


class HomeAssistantBridge:
    """A listener on the embedded broker (when no URL is set), one MQTT client, and the
    publish loop over the families' entity sources."""

    def __init__(self, services: Services, families: Sequence[Family]) -> None:
        self.services = services
        self.settings = services.settings.homeassistant
        self.topics = Topics.of(self.settings)
        # Which families' entities the settings let through.
        shown = {
            "scale": self.settings.scale,
            "irrigation": self.settings.irrigation,
            "ota": self.settings.ota,
            "gateway": self.settings.gateway,
        }
        self.sources: dict[str, EntitySource] = {
            family.name: family.homeassistant(services, self.topics)
            for family in families
            if family.homeassistant is not None and shown.get(family.name, True)
        }
        # True while the bridge listens on the process's embedded broker.
        self.embedded = False
        self.client: LinkClient | None = None
        self.url = ""
        # What this worker last published on each topic (its retained value); None: must be
        # sent again.
        self.published: dict[str, bytes | None] = {}
        self._wake = asyncio.Event()
        self._synced = asyncio.Condition()
        self._syncs = 0
        self._syncing = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.settings.mqtt_url:
            self.url = self.settings.mqtt_url
        else:
            listener = await self.services.broker.open(
                LISTENER,
                self.settings.embedded_mqtt_host,
                self.settings.embedded_mqtt_port,
                Realm(self._authenticate if self.settings.password else None, self._guard),
            )
            self.embedded = True
            self.url = listener.url
        address = BrokerAddress.parse(self.url)
        self.client = LinkClient(
            address,
            client_id=f"{self.topics.node}-homeassistant-{uuid.uuid4().hex[:8]}",
            username=address.username or (self.settings.username if self.embedded else None),
            password=address.password or (self.settings.password if self.embedded else None),
            will=Will(self.topics.availability, OFFLINE.encode()),
            on_connect=self._on_connect,
        )
        self.client.subscribe(self.topics.ha_status, self._on_ha_status)
        self.client.subscribe(self.topics.own_configs, self._on_own_config)
        for source in self.sources.values():
            for command in source.commands():
                self.client.subscribe(
                    command.topic_filter,
                    self._commanding(source, command),
                    concurrent=command.concurrent,
                )
        await self.client.start(wait=None)
        try:
            await asyncio.wait_for(self.client.connected.wait(), BROKER_WAIT_SECONDS)
        except TimeoutError:
            # Home Assistant's broker being away must not take the families down: the
            # client keeps retrying, and everything is published once it connects.
            log.warning(
                "home assistant: broker %s unreachable, retrying in the background", self.url
            )
        self._task = asyncio.create_task(self._run(), name="homeassistant-bridge")

    async def stop(self) -> None:
        if self._task is not None:
            # Let a sync under way finish its database reads: cancelled inside a session,
            # the pool logs a failed connection reset.
            self._stopping = True
            self.wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), STOP_WAIT_SECONDS)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.client is not None:
            with contextlib.suppress(ConnectionError):
                await self.client.publish(
                    self.topics.availability, OFFLINE.encode(), retain=True, confirm_within=2
                )
            await self.client.stop()
        if self.embedded:
            await self.services.broker.close(LISTENER)
            self.embedded = False

    async def _authenticate(self, username: str | None, password: str | None) -> bool:
        expected_user = self.settings.username or ""
        return (
            username is not None
            and password is not None
            and constant_time_equals(username, expected_user)
            and constant_time_equals(password, self.settings.password or "")
        )

    async def _guard(self, _username: str | None, topic: str, _action: str) -> bool:
        """On the embedded broker, Home Assistant's clients use Home Assistant's topics only
        (the device link shares the broker)."""
        return self.topics.within(topic)

    async def _on_connect(self, client: LinkClient) -> None:
        await client.publish(self.topics.availability, ONLINE.encode(), retain=True)
        self.resend()

    async def _on_ha_status(self, _topic: str, payload: bytes) -> None:
        # Home Assistant (re)started: it asks for every config again (its birth message).
        if payload.decode(errors="replace") == ONLINE:
            self.resend()

    def resend(self) -> None:
        """Read and publish everything again at the next sync (not only what changed)."""
        self.published = dict.fromkeys(self.published)
        for source in self.sources.values():
            source.forget()
        self.wake()

    async def _on_own_config(self, name: str, payload: bytes) -> None:
        # Retained configs of this node from an earlier run: cleared at the next sync unless
        # they are still wanted (a device deleted while Cloudlet was down goes away).
        if payload and name not in self.published:
            self.published[name] = payload

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
            self._wake.clear()
            if self._stopping:
                break
            self._syncing = True
            try:
                await self.sync()
            except ConnectionError as exc:
                log.debug("Home Assistant broker unreachable: %s", exc)
            except Exception:
                FAULTS.exception("Home Assistant sync failed")
            finally:
                self._syncing = False
                async with self._synced:
                    self._syncs += 1
                    self._synced.notify_all()

    async def wait_synced(self, limit: float = 10.0) -> None:
        """Wait for a sync that started after this call (tests and tools)."""
        # A sync under way may have read the database before the caller's change.
        target = self._syncs + (2 if self._syncing else 1)
        self.wake()

        async def until() -> None:
            async with self._synced:
                while self._syncs < target:
                    await self._synced.wait()

        await asyncio.wait_for(until(), limit)

    # -- publishing -----------------------------------------------------------------------

    async def desired(self) -> Messages:
        messages: Messages = {}
        for source in self.sources.values():
            messages.update(await source.messages())
        return messages

    async def sync(self) -> int:
        """Publish what changed since the last sync; clear what is gone. Returns a count."""
        client = self.client
        if client is None or not client.connected.is_set():
            return 0
        wanted = await self.desired()
        sent = 0
        for name in [t for t in self.published if t not in wanted]:
            # An empty retained message removes the entity (config) or the stale state.
            await client.publish(name, b"", retain=True)
            del self.published[name]
            sent += 1
        for name, payload in wanted.items():
            if self.published.get(name) != payload:
                await client.publish(name, payload, retain=True)
                self.published[name] = payload
                sent += 1
        return sent

    # -- commands -------------------------------------------------------------------------

    def _commanding(self, source: EntitySource, command: Command) -> CommandHandler:
        async def handle(topic: str, payload: bytes) -> None:
            try:
                await command.handler(topic, payload)
            finally:
                # The device's answer (or refusal) shows in the next state either way.
                source.forget()
                self.wake()

        return handle
