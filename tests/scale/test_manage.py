"""The management API under /api/v1/scale: devices, members, history, CSV, firmware."""

from __future__ import annotations

import copy
import csv
import io
import json
from typing import Any

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from tests.conftest import ClientFactory, admin_headers
from tests.scale.conftest import load_fixture

MEMBER = "9216776f-2a35-4ca1-8427-668087a47ed8"


def body_of(name: str) -> Any:
    return copy.deepcopy(load_fixture(name)["request"]["json"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/scale/devices"),
        ("GET", "/api/v1/scale/members"),
        ("GET", "/api/v1/scale/measurements"),
        ("GET", "/api/v1/scale/measurements.csv"),
        ("GET", "/api/v1/scale/firmware"),
        ("POST", "/api/v1/scale/firmware"),
        ("PATCH", "/api/v1/scale/devices/x"),
    ],
)
async def test_needs_a_token(scale: httpx.AsyncClient, method: str, path: str) -> None:
    answer = await scale.request(method, path, headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401


async def test_device_unit_reaches_the_scale(
    scale: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await scale.post("/lefu/wifi/torre/register", json=body_of("endpoints_torre_register"))
    listed = (await scale.get("/api/v1/scale/devices", headers=admin)).json()
    assert [d["sn"] for d in listed] == ["CFE8050813BA"]
    device = listed[0]
    assert device["unit"] == 0 and device["unitIsDefault"] is True
    assert device["skuCode"] == "CN" and device["impedanceDecoder"] == "vendor-encrypted"
    patched = await scale.patch(
        "/api/v1/scale/devices/CFE8050813BA", json={"unit": 2}, headers=admin
    )
    assert patched.json()["unit"] == 2
    config = await scale.post("/lefu/wifi/torre/config", json=body_of("seed000_torre_config"))
    assert config.json()["data"]["unit"] == 2
    reset = await scale.patch(
        "/api/v1/scale/devices/CFE8050813BA", json={"unit": None}, headers=admin
    )
    assert reset.json()["unitIsDefault"] is True
    bad = await scale.patch("/api/v1/scale/devices/CFE8050813BA", json={"unit": 99}, headers=admin)
    assert bad.status_code == 422
    missing = await scale.get("/api/v1/scale/devices/nope", headers=admin)
    assert missing.status_code == 404


async def test_default_unit_setting(make_client: ClientFactory) -> None:
    client = await make_client("scale", scale={"default_unit": 1})
    answer = await client.get("/lefu/wifi/config", params={"sn": "S1", "mac": "24:6F:28:39:BA:9D"})
    assert answer.json()["data"]["unit"] == 1


async def test_members_crud(scale: httpx.AsyncClient, admin: dict[str, str]) -> None:
    created = await scale.post(
        "/api/v1/scale/members",
        json={
            "memberId": MEMBER,
            "name": "Ana",
            "heightCm": 172,
            "sex": "female",
            "birthDate": "1990-05-01",
        },
        headers=admin,
    )
    assert created.status_code == 201
    assert created.json()["heightCm"] == 172
    again = await scale.post("/api/v1/scale/members", json={"memberId": MEMBER}, headers=admin)
    assert again.status_code == 409
    patched = await scale.patch(
        f"/api/v1/scale/members/{MEMBER}", json={"heightCm": 173.5}, headers=admin
    )
    assert patched.json()["heightCm"] == 173.5 and patched.json()["name"] == "Ana"
    assert len((await scale.get("/api/v1/scale/members", headers=admin)).json()) == 1
    deleted = await scale.delete(f"/api/v1/scale/members/{MEMBER}", headers=admin)
    assert deleted.status_code == 204
    gone = await scale.get(f"/api/v1/scale/members/{MEMBER}", headers=admin)
    assert gone.status_code == 404


async def test_history_returns_the_stored_record(
    scale: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await scale.post("/lefu/wifi/torre/record", json=body_of("seed001_torre_record"))
    page = (await scale.get("/api/v1/scale/measurements", headers=admin)).json()
    assert page["total"] == 1
    [item] = page["items"]
    assert item["history"] == {
        "accountId": "d0f404d2-4db8-4302-b95b-1e7267c330a7",
        "uid": MEMBER,
        "scaleType": 5,
        "heartRate": 81,
        "timestamp": 1730893791000,
        "impedance": 14200493,
        "z20KhzRightArmEnCode": 920589,
        "z100KhzRightArmEnCode": 1362155467,
        "z20KhzLeftArmEnCode": 545131847,
        "z100KhzLeftArmEnCode": 1349479251,
        "z20KhzTrunkEnCode": 14200493,
        "z100KhzTrunkEnCode": 1075847155,
        "z20KhzRightLegEnCode": 837069015,
        "z100KhzRightLegEnCode": 1088164826,
        "z20KhzLeftLegEnCode": 569400741,
        "z100KhzLeftLegEnCode": 537580203,
    }
    assert item["weight"] == "69.3" and item["measuredAt"] == "2024-11-06T11:49:51Z"
    assert item["bmi"] is None
    assert item["bodyComposition"] == {
        "available": False,
        "reason": "no member profile for this measurement",
    }
    # With a profile: BMI from height and weight; the encrypted impedances are not guessed at.
    await scale.post(
        "/api/v1/scale/members",
        json={"memberId": MEMBER, "heightCm": 175, "sex": "male", "birthDate": "1990-01-01"},
        headers=admin,
    )
    item = (await scale.get(f"/api/v1/scale/measurements/{item['id']}", headers=admin)).json()
    assert item["bmi"] == 22.6  # 69.3 / 1.75² = 22.63
    composition = item["bodyComposition"]
    assert composition["available"] is False
    assert composition["decoder"] == "vendor-encrypted"
    assert "cannot be decoded" in composition["reason"]


async def test_plain_ohms_device_type_gets_body_composition(
    make_client: ClientFactory,
) -> None:
    client = await make_client("scale", scale={"impedance_decoders": {"CF577": "plain-ohms"}})
    headers = await admin_headers(client)
    body = body_of("endpoints_v2_record")
    body["impedance"] = "500"
    body["weight"] = "80.0"
    await client.post("/lefu/wifi/record", json=body)
    await client.post(
        "/api/v1/scale/members",
        json={"memberId": "me", "heightCm": 180, "sex": "male", "birthDate": "1990-01-01"},
        headers=headers,
    )
    # V2 scales send no memberid: the device's default member owns its records.
    await client.patch(
        "/api/v1/scale/devices/lf21FD0001", json={"defaultMemberId": "me"}, headers=headers
    )
    page = (await client.get("/api/v1/scale/measurements?member=me", headers=headers)).json()
    [item] = page["items"]
    assert item["memberId"] == "me"
    composition = item["bodyComposition"]
    # Measured 2020-09-08: 30 years old. Sun 2003: 60.0316 kg FFM (see test_composition).
    assert composition["available"] is True
    assert composition["fatFreeMassKg"] == 60.0
    assert composition["skeletalMuscleKg"] == 32.8
    assert composition["bmrKcal"] == 1780
    assert composition["resistanceOhm"] == 500.0
    assert composition["decoder"] == "plain-ohms"
    assert item["bmi"] == 24.7


async def test_history_filters_and_csv(
    scale: httpx.AsyncClient, admin: dict[str, str], clock: FrozenClock
) -> None:
    body = body_of("seed001_torre_record")
    for offset, member in ((0, "a"), (60, "b"), (120, "a")):
        body["list"][0].update(memberid=member, timestamp=1730893791 + offset)
        await scale.post("/lefu/wifi/torre/record", json=body)
    await scale.post("/lefu/wifi/record", json=body_of("endpoints_v2_record"))

    async def ids(query: str) -> list[int]:
        page = (await scale.get(f"/api/v1/scale/measurements{query}", headers=admin)).json()
        return [i["timestamp"] for i in page["items"]]

    assert await ids("") == [1730893911000, 1730893851000, 1730893791000, 1599534596000]
    assert await ids("?member=a") == [1730893911000, 1730893791000]
    assert await ids("?device=lf21FD0001") == [1599534596000]
    assert await ids("?since=2024-11-06T11:50:00Z") == [1730893911000, 1730893851000]
    assert await ids("?until=2024-11-06T11:50:00Z") == [1730893791000, 1599534596000]
    assert await ids("?limit=1&offset=1") == [1730893851000]

    export = await scale.get("/api/v1/scale/measurements.csv?member=a", headers=admin)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [r["timestamp_ms"] for r in rows] == ["1730893791000", "1730893911000"]
    assert rows[0]["impedances"].split(";")[0] == "920589"
    assert rows[0]["weight"] == "69.3" and rows[0]["member_id"] == "a"


async def test_csv_cells_from_devices_cannot_be_formulas(
    scale: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = body_of("seed001_torre_record")
    body["list"][0].update(memberid='=HYPERLINK("http://x")', timestamp=1730893791)
    assert (await scale.post("/lefu/wifi/torre/record", json=body)).json()["errorCode"] == 0
    export = await scale.get("/api/v1/scale/measurements.csv", headers=admin)
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert rows[0]["member_id"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["weight"] == "69.3"  # plain values untouched


async def test_firmware_crud_and_whitelist(scale: httpx.AsyncClient, admin: dict[str, str]) -> None:
    check = body_of("endpoints_torre_check_for_update")
    image = {
        "type": "CF636",
        "productComponent": "MCU",
        "version": "005",
        "url": "http://fw.example/mcu-005.bin",
        "size": 1234,
        "crc": "999",
        "whitelist": ["someone-else"],
    }
    created = await scale.post("/api/v1/scale/firmware", json=image, headers=admin)
    assert created.status_code == 201
    firmware_id = created.json()["id"]
    duplicate = await scale.post("/api/v1/scale/firmware", json=image, headers=admin)
    assert duplicate.status_code == 409
    wrong = await scale.post(
        "/api/v1/scale/firmware", json=dict(image, productComponent="GPU"), headers=admin
    )
    assert wrong.status_code == 422

    async def offered() -> list[str]:
        answer = await scale.post("/lefu/wifi/torre/checkForUpdate", json=check)
        return [f"{i['productComponent']}:{i['version']}" for i in answer.json()["data"]]

    assert await offered() == []  # not on the whitelist
    await scale.patch(
        f"/api/v1/scale/firmware/{firmware_id}", json={"whitelist": None}, headers=admin
    )
    assert await offered() == ["MCU:005"]
    # The newest of several newer versions is offered; older ones never.
    for version in ("006", "003"):
        await scale.post(
            "/api/v1/scale/firmware",
            json=dict(image, version=version, whitelist=None),
            headers=admin,
        )
    assert await offered() == ["MCU:006"]
    listed = (await scale.get("/api/v1/scale/firmware?type=CF636", headers=admin)).json()
    assert len(listed) == 3
    deleted = await scale.delete(f"/api/v1/scale/firmware/{firmware_id}", headers=admin)
    assert deleted.status_code == 204
    assert (
        await scale.get(f"/api/v1/scale/firmware/{firmware_id}", headers=admin)
    ).status_code == 404


async def test_decoders_listing(scale: httpx.AsyncClient, admin: dict[str, str]) -> None:
    answer = (await scale.get("/api/v1/scale/decoders", headers=admin)).json()
    assert answer == {
        "available": ["plain-ohms", "vendor-encrypted"],
        "default": "vendor-encrypted",
        "byDeviceType": {},
    }


async def test_delete_device_removes_its_records(
    scale: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await scale.post("/lefu/wifi/torre/record", json=body_of("seed001_torre_record"))
    answer = await scale.delete("/api/v1/scale/devices/CFE8050813BA", headers=admin)
    assert answer.status_code == 204
    page = (await scale.get("/api/v1/scale/measurements", headers=admin)).json()
    assert page["total"] == 0


async def test_openapi_lists_the_scale_routes(scale: httpx.AsyncClient) -> None:
    schema = (await scale.get("/openapi.json")).json()
    paths = schema["paths"]
    assert "/lefu/wifi/torre/record" in paths and "/lefu/wifi/config" in paths
    assert "/devices/claim/lefu/wifi/torre/record" not in paths  # prefixed copies hidden
    assert {"/api/v1/scale/devices", "/api/v1/scale/measurements.csv"} <= set(paths)
    assert "scale" in paths["/api/v1/scale/devices"]["get"]["tags"]
    body = paths["/lefu/wifi/torre/record"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["schema"]["required"]) == {"sn", "mac", "type", "scaleType", "list"}
    assert "$ref" not in json.dumps(body)
    query = paths["/lefu/wifi/config"]["get"]["parameters"]
    assert [(p["name"], p["required"]) for p in query] == [
        ("sn", True),
        ("mac", True),
        ("type", False),
    ]


async def test_nul_characters_are_refused(scale: httpx.AsyncClient, admin: dict[str, str]) -> None:
    assert (await scale.get("/api/v1/scale/devices/a%00b", headers=admin)).status_code == 422
    listed = await scale.get("/api/v1/scale/measurements?member=a%00", headers=admin)
    assert listed.status_code == 422
    created = await scale.post(
        "/api/v1/scale/members", json={"memberId": "a\u0000b"}, headers=admin
    )
    assert created.status_code == 422


async def test_member_ids_seen_and_account_filter(
    scale: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = body_of("seed001_torre_record")
    await scale.post("/lefu/wifi/torre/record", json=body)
    body["list"][0].update(memberid="kid", timestamp=1730893900)
    await scale.post("/lefu/wifi/torre/record", json=body)
    await scale.post(
        "/api/v1/scale/members", json={"memberId": "kid", "heightCm": 120}, headers=admin
    )
    seen = (await scale.get("/api/v1/scale/member-ids", headers=admin)).json()
    assert seen == [
        {
            "memberId": MEMBER,
            "accountId": "d0f404d2-4db8-4302-b95b-1e7267c330a7",
            "records": 1,
            "lastTimestamp": 1730893791000,
            "hasProfile": False,
        },
        {
            "memberId": "kid",
            "accountId": "d0f404d2-4db8-4302-b95b-1e7267c330a7",
            "records": 1,
            "lastTimestamp": 1730893900000,
            "hasProfile": True,
        },
    ]
    page = await scale.get(
        "/api/v1/scale/measurements?account=d0f404d2-4db8-4302-b95b-1e7267c330a7", headers=admin
    )
    assert page.json()["total"] == 2
    page = await scale.get("/api/v1/scale/measurements?account=other", headers=admin)
    assert page.json()["total"] == 0


async def test_huge_numbers_are_refused_not_500(
    scale: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    huge = 20131704397899871436144640
    image = {"type": "CF577", "productComponent": "WIFI", "version": "1.0.1",
             "url": "http://x/a.bin", "size": huge, "crc": "00"}  # fmt: skip
    calls: list[tuple[str, str, Any]] = [
        ("GET", f"/api/v1/scale/firmware/{huge}", None),
        ("GET", f"/api/v1/scale/firmware/{2**31}", None),
        ("PATCH", f"/api/v1/scale/firmware/{huge}", {"url": "http://x/y.bin"}),
        ("PATCH", "/api/v1/scale/firmware/1", {"size": huge}),
        ("DELETE", f"/api/v1/scale/firmware/{huge}", None),
        ("GET", f"/api/v1/scale/measurements/{huge}", None),
        ("GET", f"/api/v1/scale/measurements?offset={huge}", None),
        ("POST", "/api/v1/scale/firmware", image),
    ]
    for method, path, body in calls:
        answer = await scale.request(method, path, headers=admin, json=body)
        assert answer.status_code == 422, (method, path, answer.text)
    page = await scale.get(f"/api/v1/scale/measurements?offset={2**62}", headers=admin)
    assert page.json()["items"] == []


async def test_management_refuses_what_cannot_be_right(
    scale: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = body_of("endpoints_torre_register")
    body["sn"] = "CF/636/01"  # a serial number with slashes stays addressable
    assert (await scale.post("/lefu/wifi/torre/register", json=body)).json()["errorCode"] == 0
    device = await scale.get("/api/v1/scale/devices/CF/636/01", headers=admin)
    assert device.status_code == 200 and device.json()["sn"] == "CF/636/01"
    for patch in ({"mac": "00:00:00:00:00:00"}, {"colour": "red"}, {"sn": "other"}):
        r = await scale.patch("/api/v1/scale/devices/CF/636/01", json=patch, headers=admin)
        assert r.status_code == 422, patch
    ok = await scale.patch("/api/v1/scale/devices/CF/636/01", json={"unit": 1}, headers=admin)
    assert ok.status_code == 200 and ok.json()["unit"] == 1
    image = {
        "type": "CF636",
        "productComponent": "MCU",
        "version": "009",
        "size": 1,
        "crc": "1",
    }
    for url in ("not a url", "ftp://fw.example/a.bin", "http:///a.bin", "/relative.bin"):
        r = await scale.post("/api/v1/scale/firmware", json={**image, "url": url}, headers=admin)
        assert r.status_code == 422, url
    r = await scale.post(
        "/api/v1/scale/firmware", json={**image, "url": "https://fw.example/a.bin"}, headers=admin
    )
    assert r.status_code == 201
    member = {"memberId": "m1", "heightCm": 170, "sex": "female", "birthDate": "2099-01-01"}
    assert (
        await scale.post("/api/v1/scale/members", json=member, headers=admin)
    ).status_code == 422
    member["birthDate"] = "1990-01-01"
    assert (
        await scale.post("/api/v1/scale/members", json=member, headers=admin)
    ).status_code == 201
    future = {"birthDate": "2099-01-01"}
    r = await scale.patch("/api/v1/scale/members/m1", json=future, headers=admin)
    assert r.status_code == 422
    r = await scale.patch("/api/v1/scale/members/m1", json={"memberId": "m2"}, headers=admin)
    assert r.status_code == 422  # the id is not patchable
