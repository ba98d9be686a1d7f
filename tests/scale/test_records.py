"""What the scale endpoints store: devices, records exactly as sent, no duplicates."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from cloudlet.core.clock import FrozenClock
from cloudlet.scale.models import ScaleDevice, ScaleRecord
from tests.conftest import services_of
from tests.scale.conftest import load_fixture

SEED_IMPEDANCES = [
    "920589",
    "1362155467",
    "545131847",
    "1349479251",
    "14200493",
    "1075847155",
    "837069015",
    "1088164826",
    "569400741",
    "537580203",
]


def body_of(name: str) -> Any:
    return copy.deepcopy(load_fixture(name)["request"]["json"])


async def devices(client: httpx.AsyncClient) -> list[ScaleDevice]:
    async with services_of(client).db.session() as session:
        return list((await session.scalars(select(ScaleDevice).order_by(ScaleDevice.id))).all())


async def records(client: httpx.AsyncClient) -> list[ScaleRecord]:
    async with services_of(client).db.session() as session:
        return list((await session.scalars(select(ScaleRecord).order_by(ScaleRecord.id))).all())


async def test_torre_record_is_stored_as_sent(
    scale: httpx.AsyncClient, seed_time: datetime
) -> None:
    body = body_of("seed001_torre_record")
    answer = await scale.post("/lefu/wifi/torre/record", json=body)
    assert answer.json() == {"code": 200, "errorCode": 0, "text": "success"}
    [record] = await records(scale)
    assert record.impedances == SEED_IMPEDANCES
    assert record.weight == "69.3"
    assert record.weight_kg == 69.3
    assert record.timestamp_ms == 1730893791000
    assert record.heart_rate == 81
    assert record.scale_type == 5
    assert record.member_id == "9216776f-2a35-4ca1-8427-668087a47ed8"
    assert record.account_id == "d0f404d2-4db8-4302-b95b-1e7267c330a7"
    assert record.source == "torre"
    assert record.raw == body["list"][0]
    assert record.received_at == seed_time
    [device] = await devices(scale)
    assert (device.sn, device.mac, device.device_type, device.protocol) == (
        "CFE8050813BA",
        "CF:E8:05:08:13:BA",
        "LEFU-CF577",
        "torre",
    )
    assert device.battery == "0.32"
    assert device.last_seen_at == seed_time
    assert device.registered_at is None  # first contact, not a registration


async def test_resent_record_is_not_stored_twice(
    scale: httpx.AsyncClient, clock: FrozenClock
) -> None:
    body = body_of("seed001_torre_record")
    for _ in range(3):
        answer = await scale.post("/lefu/wifi/torre/record", json=body)
        assert answer.json()["errorCode"] == 0
        clock.advance(5)
    assert len(await records(scale)) == 1
    # Same time, another member: a different measurement.
    body["list"][0]["memberid"] = "someone-else"
    await scale.post("/lefu/wifi/torre/record", json=body)
    # A list repeating itself stores once.
    body["list"] = [dict(body["list"][0], timestamp=1730893800)] * 2
    await scale.post("/lefu/wifi/torre/record", json=body)
    stored = await records(scale)
    assert [(r.member_id, r.timestamp_ms) for r in stored] == [
        ("9216776f-2a35-4ca1-8427-668087a47ed8", 1730893791000),
        ("someone-else", 1730893791000),
        ("someone-else", 1730893800000),
    ]


async def test_torre_integer_weight_and_millisecond_timestamp(scale: httpx.AsyncClient) -> None:
    body = body_of("seed001_torre_record")
    body["scaleType"] = 0
    body["list"][0].update(weight=70, timestamp=1730893791123, data=[{"impedance": 501}])
    assert (await scale.post("/lefu/wifi/torre/record", json=body)).json()["errorCode"] == 0
    [record] = await records(scale)
    assert (record.weight, record.timestamp_ms, record.impedances) == ("70", 1730893791123, ["501"])


async def test_v2_record_is_stored_as_sent(scale: httpx.AsyncClient) -> None:
    body = body_of("endpoints_v2_record")
    await scale.post("/lefu/wifi/register", json=body_of("endpoints_v2_register"))
    assert (await scale.post("/lefu/wifi/record", json=body)).json()["errorCode"] == 0
    stored = await records(scale)
    [record] = stored
    assert (record.weight, record.weight_kg, record.timestamp_ms) == ("60.5", 60.5, 1599534596000)
    assert (record.impedances, record.heart_rate, record.member_id) == (["10000"], 75, "")
    assert record.source == "v2"
    device = next(d for d in await devices(scale) if d.sn == "lf21FD0001")
    assert device.battery == "0.35"
    assert device.firmware_version == "1.0.0"
    assert device.wifi_version is None  # "" says nothing


async def test_batch_upload_keeps_strings(scale: httpx.AsyncClient) -> None:
    fixture = load_fixture("endpoints_v2_batch_record_list")
    answer = await scale.post("/lefu/wifi/batchRecord", json=fixture["request"]["json"])
    assert answer.json()["errorCode"] == 0
    stored = await records(scale)
    assert [(r.weight, r.timestamp_ms, r.impedances, r.source) for r in stored] == [
        ("13.30", 1616397011000, ["0"], "v2-batch"),
        ("13.40", 1616397071000, ["0"], "v2-batch"),
    ]
    assert stored[0].raw["Total index"] == "1"
    [device] = await devices(scale)
    assert (device.sn, device.battery, device.wifi_version, device.firmware_version) == (
        "BW01LF1012600043",
        "0.45",
        "1000.2.01025",
        "1000.2.01025",
    )
    # The offline records arrive again after the next measurement: stored once.
    await scale.post("/lefu/wifi/batchRecord", json=fixture["request"]["json"])
    assert len(await records(scale)) == 2


async def test_register_creates_device_with_versions(
    scale: httpx.AsyncClient, clock: FrozenClock
) -> None:
    await scale.post("/lefu/wifi/torre/register", json=body_of("endpoints_torre_register"))
    await scale.post("/lefu/wifi/register", json=body_of("endpoints_v2_register"))
    torre, v2 = await devices(scale)
    assert (torre.ble_version, torre.res_version, torre.mcu_version, torre.wifi_version) == (
        "0.0.9",
        "0.1.0",
        "1.2.6",
        "0.0.8",
    )
    assert (torre.hardware_version, torre.sku_code, torre.wifi_ssid) == ("V1.5", "CN", "IT52")
    assert torre.registered_at == clock.now()
    assert (v2.wifi_version, v2.firmware_version, v2.hardware_version) == ("2.0.0", "1.0.0", "S2")
    assert (v2.battery, v2.timezone, v2.protocol, v2.device_type) == (
        "0.9",
        "8",
        "v2",
        "CF516",
    )  # as sent


async def test_wifi_password_is_not_kept(scale: httpx.AsyncClient) -> None:
    await scale.post("/lefu/wifi/torre/register", json=body_of("endpoints_torre_register"))
    [device] = await devices(scale)
    assert "12345678" not in repr(
        {c.name: getattr(device, c.key) for c in device.__mapper__.columns}
    )


async def test_last_seen_moves_and_mac_follows(
    scale: httpx.AsyncClient, clock: FrozenClock
) -> None:
    body = body_of("seed000_torre_config")
    await scale.post("/lefu/wifi/torre/config", json=body)
    clock.advance(3600)
    body["mac"] = "cf:e8:05:08:13:bb"
    body["mcuVersion"] = "1.2.7"
    await scale.post("/devices/claim/lefu/wifi/torre/config", json=body)
    [device] = await devices(scale)
    assert device.last_seen_at == clock.now()
    assert device.created_at == datetime.fromtimestamp(clock.timestamp() - 3600, UTC)
    assert (device.mac, device.mcu_version) == ("cf:e8:05:08:13:bb", "1.2.7")


async def test_v2_config_accepts_a_json_body(scale: httpx.AsyncClient) -> None:
    """A V2 scale sending its config GET with a JSON body instead of a query string."""
    answer = await scale.request(
        "GET",
        "/lefu/wifi/config",
        json={"sn": "S101LF8080100001", "mac": "24:6F:28:39:BA:9D", "type": "CF516"},
    )
    assert answer.json()["text"] == "Get config info success"
    assert [d.sn for d in await devices(scale)] == ["S101LF8080100001"]
