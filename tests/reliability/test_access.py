"""Access control across families: other users' devices, missing/expired credentials, brute force.

Each family answers a refusal in its own documented form: Aifro codes 103/113/114/140-142
with their HTTP statuses, the gateway's ``{"code": 24}`` with HTTP 200, OneNET ``errno``
values, and plain 401 on Cloudlet's own management API.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from tests.conftest import ClientFactory, admin_headers, app_of, services_of
from tests.gateway.conftest import PASSWORD, initialize, login, session_headers
from tests.irrigation.conftest import link_settings
from tests.ota.conftest import Fleet
from tests.reliability.helpers import GATEWAY_HEADS, app_routes

ALICE = {"name": "alice01", "passwd": "Alice12345", "email": "alice@example.com"}
BOB = {"name": "bob0001", "passwd": "Bob123456x", "email": "bob@example.com"}
DEVICE = "11010F60BA50CF0D"


def aifro(answer: httpx.Response) -> tuple[int, int]:
    body = answer.json()
    assert set(body) == {"code", "error"}, body
    return answer.status_code, body["code"]


async def aifro_user(client: httpx.AsyncClient, user: dict[str, str]) -> dict[str, str]:
    assert (await client.post("/v1/rootusers", json=user)).status_code == 201
    answer = await client.post("/v1/user/login", json={k: user[k] for k in ("name", "passwd")})
    assert answer.status_code == 200, answer.text
    return {"Authorization": answer.json()["access_token"]}


@pytest.fixture
async def aifro_app(make_client: ClientFactory) -> httpx.AsyncClient:
    return await make_client("irrigation", irrigation=link_settings(f"rel-{uuid.uuid4().hex[:8]}"))


async def test_irrigation_other_users_device_routes(aifro_app: httpx.AsyncClient) -> None:
    client = aifro_app
    alice = await aifro_user(client, ALICE)
    bob = await aifro_user(client, BOB)
    add = {"deviceid": DEVICE, "password": "12345678", "type": 1, "descript": "d", "icon": 0}
    assert (await client.post("/v1/devices", headers=alice, json=add)).status_code == 201
    url = f"/v1/device/{DEVICE}"
    setup = {"setup": {"devicename": "mine"}}
    refusals: list[tuple[str, str, Any, tuple[int, int]]] = [
        ("POST", "/v1/devices", add, (403, 140)),
        ("DELETE", url, None, (403, 141)),
        ("PUT", url, {"icon": 1}, (403, 142)),
        ("GET", f"{url}/status?flag=0xFFFFFFFF", None, (403, 142)),
        ("POST", url, {"tasklist": [1]}, (403, 142)),
        ("DELETE", f"{url}/stoptask", None, (403, 142)),
        ("PUT", f"{url}/setup", setup, (403, 142)),
        ("POST", f"{url}/valvessetup", {"valvesindex": 1, "enabled": 1}, (403, 142)),
        # Another user's account routes: "can't find the login name or token error".
        ("GET", f"/v1/user/{ALICE['name']}", None, (401, 114)),
        ("PUT", f"/v1/user/{ALICE['name']}", {"email": "evil@example.com"}, (401, 114)),
        ("DELETE", f"/v1/user/{ALICE['name']}", None, (401, 114)),
    ]
    for method, path, body, expected in refusals:
        answer = await client.request(method, path, headers=bob, json=body)
        assert aifro(answer) == expected, (method, path, answer.text)
    # Bob sees nothing of Alice's, and Alice's device and account are untouched.
    assert (await client.get("/v1/devices", headers=bob)).json()["devicenum"] == 0
    mine = (await client.get("/v1/devices", headers=alice)).json()
    assert mine["devicenum"] == 1 and mine["devicelist"][0]["deviceid"] == DEVICE
    me = (await client.get(f"/v1/user/{ALICE['name']}", headers=alice)).json()
    assert me["email"] == ALICE["email"]


async def test_irrigation_without_or_with_stale_token(
    aifro_app: httpx.AsyncClient, clock: FrozenClock
) -> None:
    client = aifro_app
    alice = await aifro_user(client, ALICE)
    routes = [
        ("GET", "/v1/devices"),
        ("POST", "/v1/devices"),
        ("POST", "/v1/device/check"),
        ("DELETE", f"/v1/device/{DEVICE}"),
        ("PUT", f"/v1/device/{DEVICE}"),
        ("GET", f"/v1/device/{DEVICE}/status?flag=1"),
        ("POST", f"/v1/device/{DEVICE}"),
        ("DELETE", f"/v1/device/{DEVICE}/stoptask"),
        ("PUT", f"/v1/device/{DEVICE}/setup"),
        ("POST", f"/v1/device/{DEVICE}/valvessetup"),
        ("GET", f"/v1/user/{ALICE['name']}"),
        ("PUT", f"/v1/user/{ALICE['name']}"),
        ("DELETE", f"/v1/user/{ALICE['name']}"),
    ]
    for headers in ({}, {"Authorization": "0" * 32}, {"Authorization": ""}):
        for method, path in routes:
            answer = await client.request(method, path, headers=headers, json={})
            assert aifro(answer) == (401, 103), (headers, method, path, answer.text)
    clock.advance(3 * 86400 + 1)
    first = await client.get("/v1/devices", headers=alice)
    assert aifro(first) == (401, 113)
    # Once seen expired the token is forgotten: later uses are plain invalid tokens.
    for method, path in routes:
        answer = await client.request(method, path, headers=alice, json={})
        assert aifro(answer) in {(401, 113), (401, 103)}, (method, path, answer.text)


async def test_irrigation_login_brute_force_needs_captcha(aifro_app: httpx.AsyncClient) -> None:
    client = aifro_app
    await aifro_user(client, ALICE)
    wrong = {"name": ALICE["name"], "passwd": "Wrong12345"}
    codes = [aifro(await client.post("/v1/user/login", json=wrong))[1] for _ in range(6)]
    assert codes[:3] == [101, 101, 101]
    assert set(codes[3:]) == {134}, codes
    right = {"name": ALICE["name"], "passwd": ALICE["passwd"]}
    # Even the right password is refused until a captcha is solved.
    assert aifro(await client.post("/v1/user/login", json=right)) == (403, 134)


async def test_management_api_needs_a_token(make_client: ClientFactory, clock: FrozenClock) -> None:
    client = await make_client()
    headers = await admin_headers(client)
    routes = [
        (method, path)
        for method, path in app_routes(app_of(client))
        if path.startswith("/api/v1/") and path != "/api/v1/auth/login"
    ]
    assert len(routes) > 30
    families = {path.split("/")[3] for _, path in routes}
    assert {"scale", "irrigation", "ota", "gateway"} <= families
    stale = {"Authorization": headers["Authorization"]}
    for attempt in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        for method, path in routes:
            concrete = path.replace("{", "").replace("}", "")
            answer = await client.request(method, concrete, headers=attempt)
            assert answer.status_code == 401, (attempt, method, path, answer.text)
            assert answer.headers.get("www-authenticate") == "Bearer"
    clock.advance(400 * 86400)  # far past any token lifetime
    answer = await client.get("/api/v1/scale/devices", headers=stale)
    assert answer.status_code == 401


async def test_management_login_brute_force_is_limited(make_client: ClientFactory) -> None:
    client = await make_client("scale")
    await admin_headers(client)
    for _ in range(20):
        answer = await client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "guess"}
        )
        assert answer.status_code in (401, 429)
    answer = await client.post(
        "/api/v1/auth/login", json={"username": "admin", "password": "Secret123"}
    )
    # After 20 failures in a row, a lockout or 429 is expected, not a fresh token.
    assert answer.status_code in (423, 429), answer.text


@pytest.fixture
async def gateway(make_client: ClientFactory) -> httpx.AsyncClient:
    client = await make_client("gateway")
    await initialize(client)
    return client


def gateway_protected(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """Every vendor path of the box except the four the login page itself needs."""
    public = {"/ui/challenge", "/ui/login", "/ui/check_initialized", "/ui/set_init"}
    public |= {path + "/" for path in public}  # the same paths with a trailing slash
    return [
        (method, path)
        for method, path in app_routes(app_of(client))
        if path.startswith(GATEWAY_HEADS) and path not in public
    ]


DENIED = {"code": 24, "err_msg": "access denied: missing or expired Token"}


async def test_gateway_without_bad_or_expired_sid(
    gateway: httpx.AsyncClient, clock: FrozenClock
) -> None:
    routes = gateway_protected(gateway)
    assert len(routes) >= 50
    sid = await session_headers(gateway)
    assert (await gateway.get("/sys/get_info", headers=sid)).json()["code"] == 0
    clock.advance(36)  # the sid's idle lifetime is 35 s
    attempts = [{}, {"Token": ""}, {"Token": "bm9wZQ=="}, sid]
    for headers in attempts:
        for method, path in routes:
            answer = await gateway.request(method, path, headers=headers, json={})
            assert answer.status_code == 200, (method, path)
            assert answer.json() == DENIED, (headers, method, path, answer.text)
    # Nothing behind the refusals changed: still initialized, the password still works.
    assert (await gateway.get("/ui/check_initialized")).json()["result"]["initialized"] is True
    assert (await login(gateway, PASSWORD)).json()["code"] == 0


async def test_gateway_login_brute_force_is_rate_limited(gateway: httpx.AsyncClient) -> None:
    codes = [(await login(gateway, f"guess{i:04d}")).json()["code"] for i in range(8)]
    assert codes[:5] == [22] * 5
    assert set(codes[5:]) == {23}, codes
    assert (await login(gateway, PASSWORD)).json()["code"] == 23


@pytest.fixture
async def fleet(make_client: ClientFactory) -> Fleet:
    client = await make_client("ota")
    admin = await admin_headers(client)
    answer = await client.post("/api/v1/ota/products", json={"name": "meters"}, headers=admin)
    assert answer.status_code == 201, answer.text
    return Fleet(client, admin, answer.json()["id"], answer.json()["key"], {})


async def test_ota_token_of_device_a_refused_to_device_b(fleet: Fleet) -> None:
    a = await fleet.add_device("meter-a", fota_version="1.0")
    b = await fleet.add_device("meter-b", fota_version="1.0")
    await fleet.upload("2.0", b"\x5a" * 4096)
    await fleet.task(kind=1, target_version="2.0", devices=[a])
    token = (await fleet.check(a))["data"]["token"]
    client = fleet.client
    # B, signed with its own key, presents A's download token everywhere it is accepted.
    download = await client.get(
        f"/ota/download/{token}", params={"dev_id": b}, headers=fleet.auth(b)
    )
    assert download.status_code == 403 and download.json()["errno"] != 0, download.text
    alias = await client.get(f"/ota/south/download/{token}", headers=fleet.auth(b))
    assert alias.status_code == 403, alias.text
    check = await client.get(
        f"/ota/south/download/{token}/check", params={"dev_id": b}, headers=fleet.auth(b)
    )
    assert check.json()["errno"] != 0, check.text
    report = await client.post(
        "/ota/south/report",
        params={"dev_id": b, "token": token},
        json={"result": 101},
        headers=fleet.auth(b),
    )
    assert report.json()["errno"] != 0, report.text
    # B claiming to be A with B's signature: refused.
    forged = await client.post(
        "/ota/south/check",
        json={"dev_id": a, "manuf": "China Mobile", "model": "M5310", "type": 1, "version": "1.0"},
        headers=fleet.auth(b),
    )
    assert forged.json()["errno"] != 0, forged.text
    # A's own task is untouched by all of that.
    tasks = await client.get(f"/api/v1/ota/products/{fleet.product_id}/tasks", headers=fleet.admin)
    detail = await client.get(f"/api/v1/ota/tasks/{tasks.json()[-1]['id']}", headers=fleet.admin)
    assert [d["state"] for d in detail.json()["devices"]] == ["pending"]


async def test_ota_product_key_of_another_product_refused(fleet: Fleet) -> None:
    a = await fleet.add_device("meter-a", fota_version="1.0")
    other = await fleet.client.post(
        "/api/v1/ota/products", json={"name": "other"}, headers=fleet.admin
    )
    foreign = Fleet(fleet.client, fleet.admin, other.json()["id"], other.json()["key"], {})
    await foreign.add_device("x", fota_version="1.0")
    foreign.device_keys[a] = fleet.device_keys[a]
    body = {"dev_id": a, "manuf": "China Mobile", "model": "M5310", "type": 1, "version": "1.0"}
    answer = await fleet.client.post(
        "/ota/south/check", json=body, headers=foreign.auth(a, product=True)
    )
    assert answer.json()["errno"] != 0, answer.text
    expired = fleet.auth(a, et=int(services_of(fleet.client).clock.timestamp()) - 1)
    for headers in ({}, {"Authorization": "version=2018-10-31&res=x"}, expired):
        answer = await fleet.client.post("/ota/south/check", json=body, headers=headers)
        assert answer.json()["errno"] != 0, answer.text
