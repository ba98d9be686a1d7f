"""The management API's admin login and bearer tokens."""

from __future__ import annotations

from datetime import timedelta

import httpx

from cloudlet.core.clock import FrozenClock
from tests.conftest import ClientFactory, admin_headers, app_of


async def test_login_issues_a_token_that_opens_protected_routes(
    make_client: ClientFactory, clock: FrozenClock
) -> None:
    client = await make_client(families=[])
    await admin_headers(client, "alice")
    bad = await client.post("/api/v1/auth/login", json={"username": "alice", "password": "no"})
    assert bad.status_code == 401
    ok = await client.post(
        "/api/v1/auth/login", json={"username": "alice", "password": "Secret123"}
    )
    assert ok.status_code == 200
    token = ok.json()["token"]
    assert len(token) == 40
    out = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status_code == 204
    again = await client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 401


async def test_token_expires_after_thirty_days(
    make_client: ClientFactory, clock: FrozenClock
) -> None:
    client = await make_client(families=[])
    headers = await admin_headers(client)
    clock.travel(timedelta(days=30, seconds=1))
    answer = await client.post("/api/v1/auth/logout", headers=headers)
    assert answer.status_code == 401


async def test_health(make_client: ClientFactory) -> None:
    client = await make_client(families=[])
    answer = await client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


async def test_ten_wrong_passwords_lock_the_name_for_fifteen_minutes(
    make_client: ClientFactory, clock: FrozenClock
) -> None:
    client = await make_client(families=[])
    await admin_headers(client, "carol")
    wrong = {"username": "carol", "password": "nope"}
    right = {"username": "carol", "password": "Secret123"}
    for _ in range(10):
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
    locked = await client.post("/api/v1/auth/login", json=right)
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "900"
    clock.travel(timedelta(minutes=15, seconds=1))
    assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200


async def test_failures_spread_over_more_than_the_window_do_not_lock(
    make_client: ClientFactory, clock: FrozenClock
) -> None:
    client = await make_client(families=[])
    await admin_headers(client, "dave")
    wrong = {"username": "dave", "password": "nope"}
    for _ in range(9):
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
    clock.travel(timedelta(minutes=16))
    for _ in range(9):
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
    right = {"username": "dave", "password": "Secret123"}
    assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200


async def test_an_attacker_cannot_lock_the_admin_out_of_their_own_address(
    make_client: ClientFactory,
) -> None:
    client = await make_client(families=[])
    await admin_headers(client, "erin")
    transport = httpx.ASGITransport(app=app_of(client), client=("203.0.113.9", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cloudlet") as attacker:
        wrong = {"username": "erin", "password": "nope"}
        for _ in range(10):
            assert (await attacker.post("/api/v1/auth/login", json=wrong)).status_code == 401
        assert (await attacker.post("/api/v1/auth/login", json=wrong)).status_code == 429
    right = {"username": "erin", "password": "Secret123"}
    assert (await client.post("/api/v1/auth/login", json=right)).status_code == 200
