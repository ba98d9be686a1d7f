"""The management API's admin login and bearer tokens."""

from __future__ import annotations

from datetime import timedelta

from cloudlet.core.clock import FrozenClock
from tests.conftest import ClientFactory, admin_headers


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
