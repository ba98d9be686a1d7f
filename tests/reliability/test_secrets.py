"""Secrets: nothing secret in the logs (captured at DEBUG) or in clear in the database.

Each test drives a family's flows that carry secrets (passwords, device passwords, network
keys, PSKd, WiFi passwords, tokens, signing keys), then looks for every one of them, as
given and in base64/hex, in every log record and in every column of every table.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Iterable

import httpx
import pytest
from sqlalchemy import text

from cloudlet.core.clock import FrozenClock
from cloudlet.core.db import Base, import_all_models
from cloudlet.core.security import SecretBox
from cloudlet.irrigation.protocol import link_credential
from tests.conftest import TEST_SECRET, ClientFactory, admin_headers, services_of
from tests.gateway.conftest import Box, initialize, login, session_headers
from tests.irrigation.conftest import SimPool, link_settings
from tests.ota.conftest import Fleet

ARGON2_PREFIX = "$argon2id$"
CLIENT_LOGGERS = ("httpx", "httpcore")


def forms(secret: str) -> set[str]:
    """The secret as given, and the encodings a careless logger or store would use."""
    raw = secret.encode()
    return {
        secret,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
    }


def leaks(haystack: str, secrets: Iterable[str]) -> list[str]:
    return sorted(s for s in secrets for form in forms(s) if form in haystack)


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # root and every logger below it
    return caplog


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        if record.name.startswith(CLIENT_LOGGERS):
            continue  # the test's own HTTP client, not the server
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(repr(vars(record)))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append(repr(record.exc_info[1]))
    return "\n".join(parts)


async def database_text(client: httpx.AsyncClient) -> tuple[str, dict[str, list[str]]]:
    """Every row of every table as text, and the values of columns named like password hashes."""
    import_all_models()
    dump: list[str] = []
    hashes: dict[str, list[str]] = {}
    async with services_of(client).db.session() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(text(f'SELECT * FROM "{table.name}"'))).all()
            for row in rows:
                dump.append(f"{table.name}: {tuple(row)!r}")
            for column in table.columns:
                if column.name in {"password_hash", "passwd_hash"}:
                    values = [getattr(r, column.name) for r in rows]
                    hashes[f"{table.name}.{column.name}"] = values
    return "\n".join(dump), hashes


def assert_argon2(hashes: dict[str, list[str]], *, at_least: int) -> None:
    values = [v for column in hashes.values() for v in column]
    assert len(values) >= at_least, hashes
    for column, column_values in hashes.items():
        for value in column_values:
            assert value.startswith(ARGON2_PREFIX), (column, value[:12])


async def test_irrigation_secrets(
    make_client: ClientFactory, clock: FrozenClock, all_logs: pytest.LogCaptureFixture
) -> None:
    topic_root = f"rel-{uuid.uuid4().hex[:8]}"
    client = await make_client("irrigation", irrigation=link_settings(topic_root))
    user = {"name": "carol01", "passwd": "Carol9876pw", "email": "carol@example.com"}
    deviceid, device_password, new_device_password = "11010F60BA50CF0D", "Dev4321pw", "Dev9999pw"
    new_user_password = "Carol5555pw"
    assert (await client.post("/v1/rootusers", json=user)).status_code == 201
    await client.post("/v1/user/login", json={"name": user["name"], "passwd": "Wrong0000pw"})
    login_answer = await client.post(
        "/v1/user/login", json={"name": user["name"], "passwd": user["passwd"]}
    )
    token = login_answer.json()["access_token"]
    auth = {"Authorization": token}
    add = {"deviceid": deviceid, "password": device_password, "type": 1}
    assert (await client.post("/v1/devices", headers=auth, json=add)).status_code == 201
    wrong = {"deviceid": deviceid, "password": "Nope00000"}
    await client.post("/v1/device/check", headers=auth, json=wrong)
    pool = SimPool(clock, topic_root)
    try:
        await pool.factory(client)(deviceid, device_password)
        setup = {"setup": {"devicepasswd": new_device_password}}
        answer = await client.put(f"/v1/device/{deviceid}/setup", headers=auth, json=setup)
        assert answer.json()["code"] == 0, answer.text
    finally:
        await pool.close()
    change = {"name": user["name"], "passwd": user["passwd"], "passwdnew": new_user_password}
    assert (await client.put("/v1/user/passwd", json=change)).json() == {"code": 0}

    secrets = [
        user["passwd"],
        new_user_password,
        device_password,
        new_device_password,
        token,
        link_credential(deviceid, device_password),
        link_credential(deviceid, new_device_password),
    ]
    assert all_logs.records, "the flows logged nothing: the capture is not working"
    assert leaks(log_text(all_logs), secrets) == []
    dump, hashes = await database_text(client)
    assert leaks(dump, secrets) == []
    assert_argon2(hashes, at_least=1)


async def test_gateway_secrets(
    make_client: ClientFactory, clock: FrozenClock, all_logs: pytest.LogCaptureFixture
) -> None:
    client = await make_client("gateway")
    admin_password, new_password = "BoxAdmin77", "BoxAdmin88"
    wifi_password, network_key = "WifiSecret42", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    passphrase, pskd = "PASSPHR4SE", "J01NME7X"
    await initialize(client, admin_password)
    await login(client, "WrongGuess1")
    sid = await session_headers(client, admin_password)
    box = Box(client, sid)
    await box.ok("POST", "/wifi/start", {"ssid": "HomeWiFi", "pwd": "homepass123", "auth_mode": 3})
    await box.post(
        "/wifi/start",
        {"ssid": "HomeWiFi", "pwd": wifi_password, "auth_mode": 3, "enable_wifi_save": True},
    )
    network = {
        "NetworkName": "RelNet",
        "ExtPanId": "1234AAAA1234BBBB",
        "PanId": 0x1234,
        "Passphrase": passphrase,
        "NetworkKey": network_key.upper(),
        "Channel": 15,
    }
    await box.ok("POST", "/otbr/set_config", network)
    await box.ok("POST", "/otbr/start")
    await box.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    await box.ok("POST", "/otbr/add_joiner", {"PSKd": pskd, "EUI64": "0017880100000009"})
    await box.ok(
        "POST",
        "/sys/set_admin_pwd",
        {"username": "root", "old_pwd": admin_password, "new_pwd": new_password},
    )
    clock.advance(1)
    sid2 = await session_headers(client, new_password)

    secrets = [
        admin_password,
        new_password,
        "homepass123",
        wifi_password,
        network_key,
        network_key.upper(),
        passphrase,
        pskd,
        sid["Token"],
        sid2["Token"],
    ]
    assert leaks(log_text(all_logs), secrets) == []
    dump, _ = await database_text(client)
    assert leaks(dump, secrets) == []
    # At rest the secrets are sealed with the key from settings: it opens them, another does not.
    sealed = re.findall(r"gAAAAA[A-Za-z0-9_\-=]+", dump)  # Fernet tokens
    opened = {SecretBox(TEST_SECRET).decrypt(token) for token in sealed}
    assert {wifi_password, network_key, passphrase, pskd} <= {v.lower() for v in opened} | opened
    stranger = SecretBox("not-" + TEST_SECRET)
    for token in sealed:
        with pytest.raises(ValueError):
            stranger.decrypt(token)


async def test_ota_and_management_secrets(
    make_client: ClientFactory, all_logs: pytest.LogCaptureFixture
) -> None:
    client = await make_client("ota", "scale")
    admin = await admin_headers(client)
    answer = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": "Secret123"}
    )
    login_token = answer.json()["token"]
    await client.post("/api/v1/auth/login", json={"username": "admin", "password": "Guess1234"})
    product = await client.post("/api/v1/ota/products", json={"name": "p"}, headers=admin)
    fleet = Fleet(client, admin, product.json()["id"], product.json()["key"], {})
    dev = await fleet.add_device("meter-1", fota_version="1.0")
    await fleet.upload("2.0", b"\x01" * 2048)
    await fleet.task(kind=1, target_version="2.0", devices=[dev])
    download = (await fleet.check(dev))["data"]["token"]
    assert (await client.get(f"/ota/download/{download}")).status_code == 200
    auth = fleet.auth(dev)
    await client.post(
        "/ota/south/report",
        params={"dev_id": dev, "token": download},
        json={"result": 101},
        headers=auth,
    )

    secrets = [
        "Secret123",
        admin["Authorization"].removeprefix("Bearer "),
        login_token,
        fleet.product_key,
        fleet.device_keys[dev][1],
        download,
        auth["Authorization"].split("sign=")[1],
    ]
    assert leaks(log_text(all_logs), secrets) == []
    dump, hashes = await database_text(client)
    assert leaks(dump, secrets) == []
    assert_argon2(hashes, at_least=1)
