"""POST /ota/south/check: the seed example and every documented error number."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cloudlet.ota.models import OtaDevice, OtaTaskDevice
from tests.conftest import services_of
from tests.ota.conftest import IP_PORT, Fleet

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = re.compile(r"^ota_[A-Za-z0-9]{20}$")
ONENET_ORDER = [
    "target", "token", "size", "md5", "signal", "power", "retry", "interval", "type", "ipPort"
]  # fmt: skip


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


async def seed_setup(fleet: Fleet) -> bytes:
    image = bytes(range(123))
    await fleet.add_device("seed", dev_id=6523, fota_version="1.1")
    await fleet.upload("1.2", image)
    await fleet.task(
        type=1,
        kind=1,
        target_version="1.2",
        devices=[6523],
        signal=12,
        power=90,
        retry=10,
        interval=90,
    )
    return image


async def stored_device(fleet: Fleet, dev_id: int) -> OtaDevice:
    async with services_of(fleet.client).db.session() as session:
        device = await session.scalar(select(OtaDevice).where(OtaDevice.dev_id == dev_id))
        assert device is not None
        return device


async def test_golden_seed_example(fleet: Fleet) -> None:
    image = await seed_setup(fleet)
    r = await fleet.client.post(
        "/ota/south/check", json=fixture("check_request.json"), headers=fleet.auth(6523)
    )
    assert r.status_code == 200
    body = r.json()
    expected = fixture("check_response.json")
    # The seed's token is random and its md5 a placeholder: compare shape, then real bytes.
    assert TOKEN.match(body["data"]["token"])
    assert body["data"]["md5"] == hashlib.md5(image).hexdigest()
    expected["data"]["token"] = body["data"]["token"]
    expected["data"]["md5"] = body["data"]["md5"]
    assert body == expected
    # Field order is real OneNET's, not the seed example's: sscanf-based device code reads
    # target, token, size and md5 in that order (docs/ota.md).
    assert list(body["data"]) == ONENET_ORDER


async def test_golden_with_query_string_and_codes(fleet: Fleet) -> None:
    await seed_setup(fleet)
    r = await fleet.client.get(
        "/ota/south/check",
        params={
            "dev_id": 6523,
            "manuf": "001",
            "model": "00107",
            "type": 1,
            "version": "1.2",
            "cdn": "false",
        },
        headers=fleet.auth(6523),
    )
    body = r.json()
    assert body["errno"] == 0
    assert body["data"]["ipPort"] == IP_PORT


async def test_cdn_false_gives_literal_ip_port(fleet: Fleet) -> None:
    await seed_setup(fleet)
    body = await fleet.check(6523, version="1.1", cdn=False)
    assert body["data"]["ipPort"] == IP_PORT


async def test_errno_1_wrong_signature(fleet: Fleet) -> None:
    await seed_setup(fleet)
    headers = fleet.auth(6523)
    headers["Authorization"] = headers["Authorization"].replace("sign=", "sign=A")
    r = await fleet.client.post(
        "/ota/south/check", json=fixture("check_request.json"), headers=headers
    )
    assert r.status_code == 200
    assert r.json() == {"errno": 1, "error": "authentication failed"}


async def test_errno_1_expired_token_and_unknown_device(fleet: Fleet) -> None:
    await seed_setup(fleet)
    now = int(services_of(fleet.client).clock.timestamp())
    for headers, dev_id in (
        (fleet.auth(6523, et=now), 6523),
        ({}, 6523),
        (fleet.auth(6523), 999),
    ):
        r = await fleet.client.post(
            "/ota/south/check",
            json={**fixture("check_request.json"), "dev_id": dev_id},
            headers=headers,
        )
        assert r.json()["errno"] == 1


async def test_every_method_and_product_key_authenticate(fleet: Fleet) -> None:
    await seed_setup(fleet)
    for method in ("md5", "sha1", "sha256"):
        for product in (False, True):
            r = await fleet.client.post(
                "/ota/south/check",
                json=fixture("check_request.json"),
                headers=fleet.auth(6523, method=method, product=product),
            )
            assert r.json()["errno"] == 0, (method, product)


async def test_token_expiry_follows_the_clock(fleet: Fleet) -> None:
    await seed_setup(fleet)
    now = int(services_of(fleet.client).clock.timestamp())
    headers = fleet.auth(6523, et=now + 10)
    ok = await fleet.client.post(
        "/ota/south/check", json=fixture("check_request.json"), headers=headers
    )
    assert ok.json()["errno"] == 0
    services_of(fleet.client).clock.advance(10)  # type: ignore[attr-defined]
    late = await fleet.client.post(
        "/ota/south/check", json=fixture("check_request.json"), headers=headers
    )
    assert late.json()["errno"] == 1


async def test_errno_2_bad_parameters(fleet: Fleet) -> None:
    await seed_setup(fleet)
    good = fixture("check_request.json")
    bodies: list[Any] = [
        {k: v for k, v in good.items() if k != "manuf"},
        {**good, "dev_id": "65x23"},
        {**good, "type": 3},
        {**good, "cdn": "yes"},
        {**good, "signals": "strong"},
        [good],
    ]
    for body in bodies:
        r = await fleet.client.post("/ota/south/check", json=body, headers=fleet.auth(6523))
        assert r.status_code == 200
        assert r.json() == {"errno": 2, "error": "request parameter error"}, body
    r = await fleet.client.post(
        "/ota/south/check",
        content=b"{not json",
        headers={**fleet.auth(6523), "Content-Type": "application/json"},
    )
    assert r.json()["errno"] == 2


async def test_check_leniency_device_code_needs(fleet: Fleet) -> None:
    """What device programs send besides the documented body is answered, not refused."""
    await seed_setup(fleet)
    good = fixture("check_request.json")
    lenient: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({**good, "dev_id": "6523"}, {}),  # dev_id as a JSON string
        ({k: v for k, v in good.items() if k != "cdn"}, {}),  # no cdn: false
        ({**good, "type": "1"}, {}),
        (good, {"Content-Type": "text/plain"}),  # a JSON body is JSON whatever the label
    ]
    for body, headers in lenient:
        r = await fleet.client.post(
            "/ota/south/check",
            content=json.dumps(body).encode(),
            headers={**fleet.auth(6523), **headers},
        )
        assert r.json()["errno"] == 0, body
    no_cdn = {k: v for k, v in good.items() if k != "cdn"}
    r = await fleet.client.post("/ota/south/check", json=no_cdn, headers=fleet.auth(6523))
    assert r.json()["data"]["ipPort"] == IP_PORT  # cdn false: the address, not the host


async def test_errno_8_manuf_model_mismatch_fails_the_task(fleet: Fleet) -> None:
    await seed_setup(fleet)
    body = await fleet.check(6523, version="1.1", model="M5311")
    assert body == {"errno": 8, "error": "detection failed: manuf or model does not match the task"}
    # The task is now failed: the next check finds none.
    assert (await fleet.check(6523, version="1.1"))["errno"] == 11


async def test_errno_9_version_mismatch_for_differential(fleet: Fleet) -> None:
    dev = await fleet.add_device("d", fota_version="1.0")
    await fleet.upload("1.0", b"a" * 500)
    await fleet.upload("2.0", b"b" * 500)
    await fleet.diff("1.0", "2.0")
    await fleet.task(kind=2, target_version="2.0", devices=[dev])
    body = await fleet.check(dev, version="1.5")
    assert body["errno"] == 9
    async with services_of(fleet.client).db.session() as session:
        state = await session.scalar(select(OtaTaskDevice.state))
    assert state == "failed"


async def test_errno_11_no_task_of_that_type(fleet: Fleet) -> None:
    await seed_setup(fleet)
    body = await fleet.check(6523, type=2, version="3.0")
    assert body == {"errno": 11, "error": "no upgrade task of this type"}


async def test_errno_27_version_format(fleet: Fleet) -> None:
    await seed_setup(fleet)
    for version in ("", "1.2 beta", "v" * 21, "1.2/3"):
        assert (await fleet.check(6523, version=version))["errno"] == 27, version
    assert (await fleet.check(6523, version="v" * 20))["errno"] == 0


async def test_errno_32_no_differential_package(fleet: Fleet) -> None:
    # No reported version when the task was made: no package can be chosen.
    dev = await fleet.add_device("d")
    await fleet.upload("1.0", b"a" * 500)
    await fleet.upload("2.0", b"b" * 500)
    await fleet.diff("1.0", "2.0")
    await fleet.task(kind=2, target_version="2.0", devices=[dev])
    assert (await fleet.check(dev, version="1.0"))["errno"] == 32
    # An initial version without a package from it: 32 as well.
    dev2 = await fleet.add_device("e", fota_version="0.9")
    await fleet.task(kind=2, target_version="2.0", devices=[dev2])
    assert (await fleet.check(dev2, version="0.9"))["errno"] == 32


async def test_errno_7_internal_error(fleet: Fleet, monkeypatch: Any) -> None:
    await seed_setup(fleet)
    from cloudlet.ota import service

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(service, "check", broken)
    r = await fleet.client.post(
        "/ota/south/check", json=fixture("check_request.json"), headers=fleet.auth(6523)
    )
    assert r.status_code == 200
    assert r.json() == {"errno": 7, "error": "internal error"}


async def test_version_recorded_on_every_check(fleet: Fleet) -> None:
    dev = await fleet.add_device("quiet")
    assert (await fleet.check(dev, version="0.7", signals=3, powers=44))["errno"] == 11
    device = await stored_device(fleet, dev)
    assert (device.fota_version, device.last_signal, device.last_power) == ("0.7", 3, 44)
    await fleet.check(dev, type=2, version="s-1")
    device = await stored_device(fleet, dev)
    assert (device.fota_version, device.sota_version) == ("0.7", "s-1")


async def test_unknown_path_and_method_answer_in_errno_form(fleet: Fleet) -> None:
    r = await fleet.client.get("/ota/south/nothing")
    assert r.status_code == 404 and r.json()["errno"] == 2
    r = await fleet.client.put("/ota/south/check")
    assert r.status_code == 405 and r.json()["errno"] == 2


async def test_query_string_check_with_bad_parameters(fleet: Fleet) -> None:
    await seed_setup(fleet)
    base = {
        "dev_id": "6523",
        "manuf": "001",
        "model": "00107",
        "type": "1",
        "version": "1.2",
        "cdn": "true",
    }
    for broken in ({"dev_id": "x"}, {"type": "5"}, {"cdn": "maybe"}, {"signals": "lots"}):
        r = await fleet.client.get(
            "/ota/south/check", params={**base, **broken}, headers=fleet.auth(6523)
        )
        assert r.json()["errno"] == 2, broken
    params = {k: v for k, v in base.items() if k != "version"}
    r = await fleet.client.get("/ota/south/check", params=params, headers=fleet.auth(6523))
    assert r.json()["errno"] == 2


async def test_out_of_range_numbers_are_parameter_errors(fleet: Fleet) -> None:
    await seed_setup(fleet)
    good = fixture("check_request.json")
    for broken in ({"dev_id": 2**64}, {"dev_id": -1}, {"signals": 2**40}, {"version": "1.2\n"}):
        r = await fleet.client.post(
            "/ota/south/check", json={**good, **broken}, headers=fleet.auth(6523)
        )
        assert r.json()["errno"] in (2, 27), broken
    r = await fleet.client.get(
        "/ota/south/tasking", params={"dev_id": "²", "type": "1"}, headers=fleet.auth(6523)
    )
    assert r.json()["errno"] == 2
    r = await fleet.client.get(
        "/ota/south/tasking", params={"dev_id": str(2**64), "type": "1"}, headers=fleet.auth(6523)
    )
    assert r.json()["errno"] == 2


async def test_one_devices_token_cannot_check_for_another(fleet: Fleet) -> None:
    await seed_setup(fleet)
    other = await fleet.add_device("other")
    r = await fleet.client.post(
        "/ota/south/check", json=fixture("check_request.json"), headers=fleet.auth(other)
    )
    assert r.json()["errno"] == 1


async def test_differential_task_at_target_version_completes(fleet: Fleet) -> None:
    dev = await fleet.add_device("d", fota_version="1.0")
    await fleet.upload("1.0", b"a" * 500)
    await fleet.upload("2.0", b"b" * 500)
    await fleet.diff("1.0", "2.0")
    await fleet.task(kind=2, target_version="2.0", devices=[dev])
    assert (await fleet.check(dev, version="1.0"))["errno"] == 0
    assert (await fleet.check(dev, version="2.0"))["errno"] == 11
    async with services_of(fleet.client).db.session() as session:
        assert await session.scalar(select(OtaTaskDevice.state)) == "success"
