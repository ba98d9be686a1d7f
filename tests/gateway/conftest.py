"""Gateway fixtures: a client of the gateway family and a logged-in session."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloudlet.gateway.auth import login_hash, password_hmac
from cloudlet.gateway.runtime import GatewayRuntime
from tests.conftest import ClientFactory, services_of

PASSWORD = "goodpass1"


def runtime_of(client: httpx.AsyncClient) -> GatewayRuntime:
    runtime: GatewayRuntime = services_of(client).extras["gateway"]
    return runtime


async def login(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    """Challenge then login exactly as the vendor's JavaScript demo computes the hash."""
    challenge = (await client.get("/ui/challenge")).json()["result"]
    hashed = login_hash(password_hmac(password, challenge["salt"]), challenge["nonce"])
    return await client.post("/ui/login", json={"username": "root", "hash": hashed})


async def initialize(client: httpx.AsyncClient, password: str = PASSWORD) -> None:
    answer = await client.post("/ui/set_init", json={"lang": "en", "password": password})
    assert answer.json() == {"code": 0, "result": {}}


async def session_headers(client: httpx.AsyncClient, password: str = PASSWORD) -> dict[str, str]:
    answer = (await login(client, password)).json()
    assert answer["code"] == 0, answer
    return {"Token": answer["result"]["sid"]}


class Box:
    """A logged-in admin UI: get/post with the Token header, answers as JSON."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    async def get(self, path: str) -> Any:
        return (await self.client.get(path, headers=self.headers)).json()

    async def post(self, path: str, body: Any = None) -> Any:
        if body is None:
            answer = await self.client.post(path, headers=self.headers)
        else:
            answer = await self.client.post(path, json=body, headers=self.headers)
        return answer.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        answer = await (self.get(path) if method == "GET" else self.post(path, body))
        assert answer["code"] == 0, answer
        return answer["result"]


@pytest.fixture
async def gw(make_client: ClientFactory) -> httpx.AsyncClient:
    return await make_client("gateway")


@pytest.fixture
async def box(gw: httpx.AsyncClient) -> Box:
    await initialize(gw)
    return Box(gw, await session_headers(gw))
