"""The dashboard's login, session cookie and overview."""

from __future__ import annotations

from tests.conftest import ClientFactory, admin_headers


async def test_console_requires_login_then_shows_overview(make_client: ClientFactory) -> None:
    client = await make_client(families=[])
    await admin_headers(client, "alice")
    first = await client.get("/console/")
    assert first.status_code == 303
    assert first.headers["location"] == "/console/login"
    wrong = await client.post("/console/login", data={"username": "alice", "password": "x"})
    assert wrong.status_code == 401
    assert "Wrong username or password" in wrong.text
    ok = await client.post("/console/login", data={"username": "alice", "password": "Secret123"})
    assert ok.status_code == 303
    page = await client.get("/console/")
    assert page.status_code == 200
    assert "Overview" in page.text
    assert "Log out alice" in page.text
    out = await client.post("/console/logout")
    assert out.status_code == 303
    assert (await client.get("/console/")).status_code == 303
