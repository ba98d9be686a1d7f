"""A scale's wake (register, config sync, update check, upload within seconds) writes its device
row once: a config sync or check that changes nothing is answered from one read; what changed,
and ``last_seen_at`` once a minute, is still stored."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from sqlalchemy import Engine

from cloudlet.core.clock import FrozenClock
from tests.conftest import recorded_writes, services_of
from tests.scale.conftest import load_fixture, prepare

CHECK = load_fixture("endpoints_torre_check_for_update")
CHECK_BODY: dict[str, Any] = CHECK["request"]["json"]
IDENT = {key: CHECK_BODY[key] for key in ("sn", "mac", "type")}
VERSIONS = {
    key: CHECK_BODY[key] for key in ("wifiVersion", "bleVersion", "resVersion", "mcuVersion")
}
SN = IDENT["sn"]


def _record() -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(load_fixture("seed001_torre_record")["request"]["json"])
    return body | {"sn": SN, "mac": IDENT["mac"], "type": IDENT["type"]}


async def _post(scale: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await scale.post(path, json=body)
    assert answer.status_code == 200
    payload: dict[str, Any] = answer.json()
    assert payload["errorCode"] == 0, payload
    return payload


async def _registered(scale: httpx.AsyncClient) -> Engine:
    """The scale registered; answers the engine whose writes a test counts."""
    await _post(scale, "/lefu/wifi/torre/register", IDENT | VERSIONS)
    return services_of(scale).db.engine.sync_engine


def _iso(clock: FrozenClock) -> str:
    """A time as the management API writes it."""
    return clock.now().isoformat().replace("+00:00", "Z")


async def _device(scale: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, Any]:
    answer = await scale.get(f"/api/v1/scale/devices/{SN}", headers=admin)
    assert answer.status_code == 200
    device: dict[str, Any] = answer.json()
    return device


async def test_a_wake_writes_its_device_once(
    scale: httpx.AsyncClient, admin: dict[str, str], clock: FrozenClock
) -> None:
    """As scale/sim.py's greeting and a Torre firmware's wake: register, config, check, record."""
    await prepare(scale, clock, admin, CHECK)
    engine = services_of(scale).db.engine.sync_engine
    with recorded_writes(engine) as register:
        await _post(
            scale, "/lefu/wifi/torre/register", IDENT | VERSIONS | {"bat": CHECK_BODY["bat"]}
        )
    assert len(register) == 1 and register[0].startswith("INSERT INTO scale_device")
    clock.advance(2)
    with recorded_writes(engine) as polls:
        config = await _post(scale, "/lefu/wifi/torre/config", IDENT | VERSIONS)
        clock.advance(1)
        check = await _post(scale, "/lefu/wifi/torre/checkForUpdate", CHECK_BODY)
    assert polls == []
    assert config["data"]["unit"] == 0 and config["data"]["nowTime"] == clock.millis() - 1000
    # The offer is the one a check that writes would make (the golden answer).
    assert check == CHECK["response"]["json"] | {
        "data": [item | {"nowTime": clock.millis()} for item in CHECK["response"]["json"]["data"]]
    }
    with recorded_writes(engine) as upload:
        await _post(scale, "/lefu/wifi/torre/record", _record())
    assert [s.split()[2] for s in upload] == ["scale_device", "scale_record"]
    assert (await _device(scale, admin))["battery"] == _record()["bat"]  # the upload's, latest


async def test_what_a_sync_changes_is_stored(
    scale: httpx.AsyncClient, admin: dict[str, str], clock: FrozenClock
) -> None:
    engine = await _registered(scale)
    clock.advance(5)
    body = IDENT | VERSIONS
    for change in ({"wifiVersion": "004"}, {"bat": "0.55"}, {"mac": "CF:63:6A:1B:2C:3E"}):
        body |= change
        with recorded_writes(engine) as writes:
            await _post(scale, "/lefu/wifi/torre/config", body)
        assert len(writes) == 1, change
    device = await _device(scale, admin)
    assert (device["wifiVersion"], device["battery"], device["mac"]) == (
        "004",
        "0.55",
        "CF:63:6A:1B:2C:3E",
    )
    # A blank or absent value is no change (a scale sending "" has not forgotten its version).
    with recorded_writes(engine) as writes:
        await _post(scale, "/lefu/wifi/torre/config", body | {"wifiVersion": ""})
    assert writes == []


async def test_last_seen_is_kept_to_the_minute(
    scale: httpx.AsyncClient, admin: dict[str, str], clock: FrozenClock
) -> None:
    engine = await _registered(scale)
    registered = (await _device(scale, admin))["lastSeenAt"]
    clock.advance(59.999)
    with recorded_writes(engine) as writes:
        await _post(scale, "/lefu/wifi/torre/config", IDENT | VERSIONS)
    assert writes == [] and (await _device(scale, admin))["lastSeenAt"] == registered
    clock.advance(0.001)
    with recorded_writes(engine) as writes:
        await _post(scale, "/lefu/wifi/torre/config", IDENT | VERSIONS)
    assert len(writes) == 1
    assert (await _device(scale, admin))["lastSeenAt"] == _iso(clock)
    # A clock set back (a test's, or an operator's) is stored as it is, not compared away.
    clock.advance(-30)
    with recorded_writes(engine) as writes:
        await _post(scale, "/lefu/wifi/torre/config", IDENT | VERSIONS)
    assert len(writes) == 1


async def test_a_unit_set_by_the_owner_reaches_the_next_sync_without_a_write(
    scale: httpx.AsyncClient, admin: dict[str, str], clock: FrozenClock
) -> None:
    engine = await _registered(scale)
    patched = await scale.patch(f"/api/v1/scale/devices/{SN}", json={"unit": 2}, headers=admin)
    assert patched.status_code == 200
    clock.advance(1)
    with recorded_writes(engine) as writes:
        torre = await _post(scale, "/lefu/wifi/torre/config", IDENT | VERSIONS)
    assert writes == [] and torre["data"]["unit"] == 2


async def test_a_v2_scale_config_get_after_its_register_writes_nothing(
    scale: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """V2/V3: register (POST), then the config sync as a GET with query parameters."""
    engine = services_of(scale).db.engine.sync_engine
    register = load_fixture("endpoints_v2_register")
    config = load_fixture("endpoints_v2_config_get")
    await _post(scale, register["request"]["path"], register["request"]["json"])
    clock.advance(3)
    with recorded_writes(engine) as writes:
        answer = await scale.get(config["request"]["path"], params=config["request"]["params"])
    assert writes == []
    assert answer.json() == {
        "data": {"nowTime": clock.millis(), "now": clock.millis(), "unit": 0},
        "errorCode": 0,
        "text": "Get config info success",
    }


async def test_every_register_is_stored(
    scale: httpx.AsyncClient, admin: dict[str, str], clock: FrozenClock
) -> None:
    engine = await _registered(scale)
    clock.advance(1)
    with recorded_writes(engine) as writes:
        await _post(scale, "/lefu/wifi/torre/register", IDENT | VERSIONS)
    assert len(writes) == 1
    assert (await _device(scale, admin))["registeredAt"] == _iso(clock)


async def test_a_check_that_writes_nothing_offers_what_a_writing_check_offers(
    scale: httpx.AsyncClient, admin: dict[str, str], clock: FrozenClock
) -> None:
    """The offer read without a session: the whitelist, newest per component, the order."""
    images = [
        ("BLE", "004", None),
        ("BLE", "005", ["someone-else"]),  # not for this scale
        ("MCU", "005", [SN]),
        ("MCU", "006", [SN, "another"]),
        ("RES", "003", None),  # older than what it runs
    ]
    for component, version, whitelist in images:
        image = {
            "type": IDENT["type"],
            "productComponent": component,
            "version": version,
            "url": f"http://fw.example/{component}-{version}.bin",
            "size": 4096,
            "crc": "77",
            "whitelist": whitelist,
        }
        answer = await scale.post("/api/v1/scale/firmware", json=image, headers=admin)
        assert answer.status_code == 201, answer.text
    engine = services_of(scale).db.engine.sync_engine
    with recorded_writes(engine) as writes:
        written = await _post(scale, "/lefu/wifi/torre/checkForUpdate", CHECK_BODY)
    assert len(writes) == 1
    assert [(i["productComponent"], i["version"]) for i in written["data"]] == [
        ("BLE", "004"),
        ("MCU", "006"),
    ]
    clock.advance(30)
    with recorded_writes(engine) as writes:
        read = await _post(scale, "/lefu/wifi/torre/checkForUpdate", CHECK_BODY)
    assert writes == []
    assert read["data"] == [item | {"nowTime": clock.millis()} for item in written["data"]]
    assert [list(item) for item in read["data"]] == [list(item) for item in written["data"]]
