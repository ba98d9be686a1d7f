"""Dashboard fixtures: a console login on any test client."""

from __future__ import annotations

import httpx

from tests.conftest import admin_headers

PASSWORD = "Secret123"  # what tests.conftest.admin_headers gives every admin


async def console_login(client: httpx.AsyncClient, username: str = "admin") -> dict[str, str]:
    """Create an admin, log in through the console's form; the management headers too."""
    headers = await admin_headers(client, username)
    answer = await client.post("/console/login", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return headers
