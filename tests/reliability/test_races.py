"""Races: the same request many times at once is applied once, and nobody gets a 500."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import httpx

from cloudlet.gateway.auth import login_hash, password_hmac
from tests.conftest import ClientFactory, admin_headers
from tests.irrigation.conftest import link_settings
from tests.ota.conftest import Fleet

TESTS = Path(__file__).resolve().parents[1]
TIMES = 12
ON_POSTGRES = bool(os.environ.get("CLOUDLET_TEST_DATABASE_URL"))


async def at_once(*calls: Any) -> list[httpx.Response]:
    return list(await asyncio.gather(*calls))


async def test_same_scale_record_at_once_is_stored_once(make_client: ClientFactory) -> None:
    client = await make_client("scale")
    body = json.loads((TESTS / "scale" / "fixtures" / "seed001_torre_record.json").read_text())
    record = body["request"]["json"]
    answers = await at_once(
        *(client.post("/lefu/wifi/torre/record", json=record) for _ in range(TIMES))
    )
    assert [a.json()["errorCode"] for a in answers] == [0] * TIMES, [a.text for a in answers]
    page = await client.get("/api/v1/scale/measurements", headers=await admin_headers(client))
    assert page.json()["total"] == 1


async def test_same_device_claimed_by_two_users_at_once(make_client: ClientFactory) -> None:
    client = await make_client("irrigation", irrigation=link_settings(f"rc-{uuid.uuid4().hex[:8]}"))
    tokens = []
    for name in ("racer01", "racer02"):
        user = {"name": name, "passwd": "Racer12345", "email": f"{name}@example.com"}
        await client.post("/v1/rootusers", json=user)
        login = await client.post("/v1/user/login", json={"name": name, "passwd": "Racer12345"})
        tokens.append(login.json()["access_token"])
    add = {"deviceid": "11010F60BA50CF0D", "password": "12345678", "type": 1}
    answers = await at_once(
        *(
            client.post("/v1/devices", headers={"Authorization": tokens[i % 2]}, json=add)
            for i in range(TIMES)
        )
    )
    outcomes = sorted((a.status_code, a.json()["code"]) for a in answers)
    assert outcomes.count((201, 0)) == 1, outcomes
    assert set(outcomes) - {(201, 0)} <= {(403, 105), (403, 140)}, outcomes
    owned = [
        (await client.get("/v1/devices", headers={"Authorization": t})).json()["devicenum"]
        for t in tokens
    ]
    assert sorted(owned) == [0, 1]


async def test_same_ota_report_at_once_counts_once(make_client: ClientFactory) -> None:
    client = await make_client("ota")
    admin = await admin_headers(client)
    product = await client.post("/api/v1/ota/products", json={"name": "p"}, headers=admin)
    fleet = Fleet(client, admin, product.json()["id"], product.json()["key"], {})
    dev = await fleet.add_device("racer", fota_version="1.0")
    await fleet.upload("2.0", b"\x42" * 2048)
    await fleet.task(kind=1, target_version="2.0", devices=[dev])
    token = (await fleet.check(dev))["data"]["token"]
    await client.get(
        f"/ota/south/download/{token}/check", params={"dev_id": dev}, headers=fleet.auth(dev)
    )
    for result, already in ((101, {0, 20, 21}), (201, {0, 20})):
        answers = await at_once(
            *(
                client.post(
                    "/ota/south/report",
                    params={"dev_id": dev, "token": token},
                    json={"result": result},
                    headers=fleet.auth(dev),
                )
                for _ in range(TIMES)
            )
        )
        errnos = [a.json()["errno"] for a in answers]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
        assert errnos.count(0) >= 1 and set(errnos) <= already, (result, errnos)
    device = await client.get(
        f"/api/v1/ota/products/{fleet.product_id}/devices/{dev}", headers=admin
    )
    assert device.json()["fota_version"] == "2.0"


async def test_same_gateway_login_at_once_gives_one_sid(make_client: ClientFactory) -> None:
    client = await make_client("gateway")
    await client.post("/ui/set_init", json={"lang": "en", "password": "racepass10"})
    challenge = (await client.get("/ui/challenge")).json()["result"]
    hashed = login_hash(password_hmac("racepass10", challenge["salt"]), challenge["nonce"])
    answers = await at_once(
        *(client.post("/ui/login", json={"username": "root", "hash": hashed}) for _ in range(6))
    )
    codes = sorted(a.json()["code"] for a in answers)
    assert codes.count(0) == 1, codes  # the nonce works once
    assert set(codes) <= {0, 22, 23}, codes


async def test_concurrent_wrong_logins_all_count(make_client: ClientFactory) -> None:
    """Ten wrong guesses at once: each is refused and counted, so the box locks."""
    client = await make_client("gateway")
    await client.post("/ui/set_init", json={"lang": "en", "password": "racepass10"})
    guesses = []
    for i in range(10):
        challenge = (await client.get("/ui/challenge")).json()["result"]
        wrong = login_hash(password_hmac(f"guess{i:03d}", challenge["salt"]), challenge["nonce"])
        guesses.append({"username": "root", "hash": wrong})
    answers = await at_once(*(client.post("/ui/login", json=g) for g in guesses))
    codes = sorted(a.json()["code"] for a in answers)
    assert set(codes) <= {22, 23}, codes
    challenge = (await client.get("/ui/challenge")).json()["result"]
    right = login_hash(password_hmac("racepass10", challenge["salt"]), challenge["nonce"])
    answer = await client.post("/ui/login", json={"username": "root", "hash": right})
    assert answer.json()["code"] == 23, answer.text  # locked after 5 failures


async def test_concurrent_wrong_irrigation_logins_all_count(make_client: ClientFactory) -> None:
    client = await make_client("irrigation", irrigation=link_settings(f"rc-{uuid.uuid4().hex[:8]}"))
    user = {"name": "racer03", "passwd": "Racer12345", "email": "r3@example.com"}
    await client.post("/v1/rootusers", json=user)
    wrong = {"name": "racer03", "passwd": "Wrong12345"}
    answers = await at_once(*(client.post("/v1/user/login", json=wrong) for _ in range(10)))
    assert {(a.status_code, a.json()["code"]) for a in answers} <= {(403, 101), (403, 134)}
    right = await client.post("/v1/user/login", json={"name": "racer03", "passwd": "Racer12345"})
    assert right.json()["code"] == 134, right.text


async def test_concurrent_wrong_device_passwords_all_count(make_client: ClientFactory) -> None:
    client = await make_client("irrigation", irrigation=link_settings(f"rc-{uuid.uuid4().hex[:8]}"))
    owner = {"name": "racer04", "passwd": "Racer12345", "email": "r4@example.com"}
    other = {"name": "racer05", "passwd": "Racer12345", "email": "r5@example.com"}
    tokens = []
    for user in (owner, other):
        await client.post("/v1/rootusers", json=user)
        login = await client.post("/v1/user/login", json={"name": user["name"],
                                                           "passwd": user["passwd"]})  # fmt: skip
        tokens.append({"Authorization": login.json()["access_token"]})
    device = {"deviceid": "11010F60BA50CF0D", "password": "12345678", "type": 1}
    assert (await client.post("/v1/devices", headers=tokens[0], json=device)).status_code == 201
    check = {"deviceid": device["deviceid"], "password": "guess999"}
    answers = await at_once(
        *(client.post("/v1/device/check", headers=tokens[0], json=check) for _ in range(10))
    )
    assert {(a.status_code, a.json()["code"]) for a in answers} <= {(403, 131), (403, 134)}, [
        a.text for a in answers
    ]
    right = await client.post(
        "/v1/device/check", headers=tokens[0], json=check | {"password": "12345678"}
    )
    assert right.json()["code"] == 134, right.text
