"""What real scales and the vendor's apps send, replayed: every case answered and stored.

Each test asserts the wire answer the device reads and the row Cloudlet stored: ``""`` for
absent values, firmware sentinels in optional fields, numbers and strings either way, unused
fields of any JSON type, BOM/NUL/invalid-UTF-8 bodies, ``//`` in the path, several weighings
in one second, the demo app's WiFi-group flow, and firmware spelled "002" vs "0.0.2".
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx
from sqlalchemy import select

from cloudlet.scale.models import ScaleDevice, ScaleRecord
from tests.conftest import services_of
from tests.scale.conftest import load_fixture

OK_RECORD = {"code": 200, "errorCode": 0, "text": "success"}
# The Lefu demo app's own sample of an offline record (WifiDataVo, a CF516 scale).
DEMO_OFFLINE = {
    "sn": "BW01LF1012600043",
    "type": "CF516",
    "mac": "88:4a:18:5f:f6:c5",
    "firmwareVersion": "1000.2.01025",
    "WifiVersion": "1000.2.01025",
    "charge": "0.45",
    "Total index": "1",
    "Current index": "1",
    "weight": "13.30",
    "impedance": "0",
    "data_type": "0",
    "rssi": "-50",
    "timestamp": "1616397011000",
}


def body_of(name: str) -> Any:
    return copy.deepcopy(load_fixture(name)["request"]["json"])


async def records(client: httpx.AsyncClient) -> list[ScaleRecord]:
    async with services_of(client).db.session() as session:
        return list(await session.scalars(select(ScaleRecord).order_by(ScaleRecord.id)))


async def device(client: httpx.AsyncClient, sn: str) -> ScaleDevice:
    async with services_of(client).db.session() as session:
        found = await session.scalar(select(ScaleDevice).where(ScaleDevice.sn == sn))
        assert found is not None
        return found


async def post_raw(client: httpx.AsyncClient, path: str, raw: bytes) -> dict[str, Any]:
    r = await client.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    answer: dict[str, Any] = r.json()
    return answer


async def test_blank_means_absent(scale: httpx.AsyncClient) -> None:
    record = {**body_of("endpoints_v2_record"), "heartRate": "", "impedance": ""}
    assert await post_raw(scale, "/lefu/wifi/record", json.dumps(record).encode()) == OK_RECORD
    [stored] = await records(scale)
    assert (stored.heart_rate, stored.impedances, stored.weight) == (None, [], "60.5")
    assert stored.raw["heartRate"] == ""  # the record as sent
    register = {**body_of("endpoints_v2_register"), "timezone": ""}
    answer = await post_raw(scale, "/lefu/wifi/register", json.dumps(register).encode())
    assert answer["errorCode"] == 0
    assert (await device(scale, register["sn"])).timezone is None


async def test_time_zone_as_any_number_or_string(scale: httpx.AsyncClient) -> None:
    base = body_of("endpoints_v2_register")
    for sent, stored in ((5.5, "5.5"), ("+05:30", "+05:30"), (-3, "-3")):
        answer = await post_raw(
            scale, "/lefu/wifi/register", json.dumps({**base, "timezone": sent}).encode()
        )
        assert answer["errorCode"] == 0, sent
        assert (await device(scale, base["sn"])).timezone == stored


async def test_one_bad_optional_field_loses_nothing(scale: httpx.AsyncClient) -> None:
    body = body_of("seed001_torre_record")
    first = body["list"][0]
    body["list"] = [
        {**first, "memberid": "a", "heartRate": 65535},  # firmware sentinels
        {**first, "memberid": "b", "heartRate": -1},
        {**first, "memberid": "c", "heartRate": 72},
    ]
    assert await post_raw(scale, "/lefu/wifi/torre/record", json.dumps(body).encode()) == OK_RECORD
    stored = {r.member_id: r for r in await records(scale)}
    assert set(stored) == {"a", "b", "c"}
    assert (stored["a"].heart_rate, stored["b"].heart_rate, stored["c"].heart_rate) == (
        None,
        None,
        72,
    )
    assert stored["a"].raw["_cloudlet"]["dropped"] == {"heartRate": 65535}
    assert stored["a"].raw["heartRate"] == 65535  # kept as sent beside the note
    assert "_cloudlet" not in stored["c"].raw
    assert len(stored["a"].impedances) == 10


async def test_numbers_and_strings_either_way(scale: httpx.AsyncClient) -> None:
    torre = body_of("seed001_torre_record")
    torre["list"][0].update(weight="69.30", timestamp="1730893791")
    assert await post_raw(scale, "/lefu/wifi/torre/record", json.dumps(torre).encode()) == OK_RECORD
    v2 = {**body_of("endpoints_v2_record"), "weight": 60.5, "timestamp": 1599534596000}
    assert await post_raw(scale, "/lefu/wifi/record", json.dumps(v2).encode()) == OK_RECORD
    by_source = {r.source: r for r in await records(scale)}
    assert (by_source["torre"].weight, by_source["torre"].weight_kg) == ("69.30", 69.3)
    assert by_source["torre"].timestamp_ms == 1730893791000
    assert (by_source["v2"].weight, by_source["v2"].timestamp_ms) == ("60.5", 1599534596000)


async def test_unused_fields_of_any_type_are_ignored(scale: httpx.AsyncClient) -> None:
    offline = {**DEMO_OFFLINE, "rssi": -50, "data_type": 0, "Total index": 1, "Current index": None}
    answer = await post_raw(scale, "/lefu/wifi/batchRecord", json.dumps(offline).encode())
    assert answer == OK_RECORD
    [stored] = await records(scale)
    assert (stored.weight, stored.source, stored.raw["rssi"]) == ("13.30", "v2-batch", -50)


async def test_required_fields_still_refuse_and_store_nothing(scale: httpx.AsyncClient) -> None:
    body = body_of("seed001_torre_record")
    del body["list"][0]["weight"]
    answer = await post_raw(scale, "/lefu/wifi/torre/record", json.dumps(body).encode())
    assert answer == {"errorCode": 1, "text": "Missing parameter: list[0].weight"}
    assert await records(scale) == []


async def test_tolerant_bodies(scale: httpx.AsyncClient) -> None:
    record = json.dumps(body_of("endpoints_v2_record")).encode()
    for raw in (b"\xef\xbb\xbf" + record, record + b"\x00", record + b"\x00\x00\r\n"):
        assert await post_raw(scale, "/lefu/wifi/record", raw) == OK_RECORD
    [stored] = await records(scale)  # the same record three times: stored once
    assert base64.b64decode(stored.raw["_cloudlet"]["receivedBase64"]).startswith(b"\xef\xbb\xbf")
    register = body_of("endpoints_torre_register")
    raw = json.dumps({**register, "wifiSsid": "CAFE"}).encode().replace(b"CAFE", b"Caf\xe9")
    answer = await post_raw(scale, "/lefu/wifi/torre/register", raw)
    assert answer["errorCode"] == 0
    assert (await device(scale, register["sn"])).wifi_ssid == "Caf\ufffd"
    assert (await post_raw(scale, "/lefu/wifi/record", b"\xef\xbb\xbf{nope"))["errorCode"] == 1


async def test_a_doubled_slash_reaches_the_endpoint(scale: httpx.AsyncClient) -> None:
    record = json.dumps(body_of("endpoints_v2_record")).encode()
    assert await post_raw(scale, "http://testserver//lefu/wifi/record", record) == OK_RECORD
    assert await post_raw(scale, "/devices/claim//lefu/wifi/record", record) == OK_RECORD
    assert len(await records(scale)) == 1  # the same record: stored once


async def test_weighings_sharing_a_second_are_all_kept(scale: httpx.AsyncClient) -> None:
    body = body_of("seed001_torre_record")
    first = body["list"][0]
    body["list"] = [{**first, "weight": w} for w in (69.3, 70.1, 12.4)]
    raw = json.dumps(body).encode()
    assert await post_raw(scale, "/lefu/wifi/torre/record", raw) == OK_RECORD
    assert await post_raw(scale, "/lefu/wifi/torre/record", raw) == OK_RECORD  # re-send
    assert sorted(r.weight for r in await records(scale)) == ["12.4", "69.3", "70.1"]
    metrics = (await scale.get("/metrics")).text
    assert "cloudlet_scale_duplicate_records_total 3.0" in metrics


async def test_demo_app_wifi_group_flow(scale: httpx.AsyncClient) -> None:
    """As BluetoothKit-AndroidDemo: saveWifiGroup (form post) after configuring WiFi, the
    scale uploads, getScaleWeights?uid= (parsed with fastjson into WifiDataBean)."""
    uid, sn = "679d8b6a-b18e-48cd-9f33-362f3ea9546a", DEMO_OFFLINE["sn"]
    saved = await scale.post("/lefu/wifi/app/saveWifiGroup", data={"sn": sn, "uid": uid})
    assert saved.json() == {"code": 200, "msg": "success", "status": True}
    upload = json.dumps(DEMO_OFFLINE).encode()
    assert await post_raw(scale, "/lefu/wifi/batchRecord", upload) == OK_RECORD
    weights = (await scale.get(f"/lefu/wifi/app/getScaleWeights?uid={uid}")).json()
    assert (weights["code"], weights["msg"], weights["status"]) == (200, "success", True)
    [item] = weights["data"]
    assert (item["uid"], item["snNum"]) == (uid, sn) and isinstance(item["id"], int)
    bean = json.loads(item["weightJson"])  # WifiDataBean: weight double, impedance int
    assert bean == DEMO_OFFLINE
    assert float(bean["weight"]) == 13.3 and int(bean["impedance"]) == 0
    # Another app user cannot take the scale over or read it.
    thief = await scale.post("/lefu/wifi/app/saveWifiGroup", data={"sn": sn, "uid": "other"})
    assert thief.json() == {
        "code": 409,
        "msg": "the scale is bound to another user",
        "status": False,
    }
    other = (await scale.get("/lefu/wifi/app/getScaleWeights?uid=other")).json()
    assert other["status"] is True and other["data"] == []
    assert (await scale.get("/lefu/wifi/app/getScaleWeights")).json()["status"] is False
    # Removing the scale unbinds it; the measurements stay for the admin.
    cleared = await scale.get(f"/lefu/wifi/app/clearDeviceData?sn={sn}&uid={uid}")
    assert cleared.json()["status"] is True
    after = (await scale.get(f"/lefu/wifi/app/getScaleWeights?uid={uid}")).json()
    assert after["data"] == [] and len(await records(scale)) == 1
    again = await scale.get(f"/lefu/wifi/app/clearDeviceData?sn={sn}&uid={uid}")
    assert again.json()["status"] is False


async def test_torre_records_reach_the_app_in_the_shape_it_parses(
    scale: httpx.AsyncClient,
) -> None:
    body = body_of("seed001_torre_record")
    await scale.post("/lefu/wifi/app/saveWifiGroup", data={"sn": body["sn"], "uid": "u1"})
    assert await post_raw(scale, "/lefu/wifi/torre/record", json.dumps(body).encode()) == OK_RECORD
    [item] = (await scale.get("/lefu/wifi/app/getScaleWeights?uid=u1")).json()["data"]
    bean = json.loads(item["weightJson"])
    first = body["list"][0]
    assert bean["sn"] == body["sn"] and bean["weight"] == str(first["weight"])
    assert bean["timestamp"] == str(first["timestamp"] * 1000)
    assert bean["impedance"] == first["data"][0]["impedance"]


async def test_the_running_firmware_is_never_offered(
    scale: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for version in ("002", "005"):
        image = {
            "type": "CF636",
            "productComponent": "MCU",
            "version": version,
            "url": f"http://fw.example/mcu-{version}.bin",
            "size": 1000,
            "crc": "123",
        }
        r = await scale.post("/api/v1/scale/firmware", json=image, headers=admin)
        assert r.status_code == 201, r.text
    check = body_of("endpoints_torre_check_for_update")
    for running, offered in (("0.0.2", ["005"]), ("0.0.5", []), ("005", [])):
        check["mcuVersion"] = running
        answer = await post_raw(
            scale, "/lefu/wifi/torre/checkForUpdate", json.dumps(check).encode()
        )
        versions = [i["version"] for i in answer["data"] if i["productComponent"] == "MCU"]
        assert versions == offered, running
