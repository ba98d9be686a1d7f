"""Gateway fixtures: a client of the gateway family and a logged-in session."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.gateway.auth import login_hash, password_hmac
from cloudlet.gateway.runtime import GatewayRuntime
from cloudlet.gateway.simstore import SimWorld, stored_world
from tests.conftest import ClientFactory, admin_headers, services_of

PASSWORD = "goodpass10"


def runtime_of(client: httpx.AsyncClient) -> GatewayRuntime:
    runtime: GatewayRuntime = services_of(client).extras["gateway"]
    return runtime


@asynccontextmanager
async def sim_world(client: httpx.AsyncClient) -> AsyncIterator[SimWorld]:
    """The simulated world in the database, saved and committed when the block ends."""
    services = services_of(client)
    async with services.db.session() as session:
        async with stored_world(session, clock=services.clock, box=services.secrets) as world:
            yield world
        await session.commit()


async def add_sim_joiner(
    client: httpx.AsyncClient,
    eui64: str = "00000000000000aa",
    pskd: str = "NEWXNE",
    delay_s: float = 2,
    admin: dict[str, str] | None = None,
) -> None:
    """Put a joiner device in range of the simulated radio (Cloudlet's management API, as
    ``admin``, else as a new admin user)."""
    answer = await client.post(
        "/api/v1/gateway/sim/joiners",
        json={"eui64": eui64, "pskd": pskd, "join_delay_s": delay_s},
        headers=admin or await admin_headers(client),
    )
    assert answer.status_code == 201, answer.text


async def joiner_waiting(radio: Box, commissioner: Box) -> None:
    """A joiner device in range (2 s to join), Thread started through ``radio``, and the
    commissioner, with the joiner added, through ``commissioner``: the joiner is listed as
    joining (1) until the clock moves on 2 s."""
    await add_sim_joiner(radio.client)
    await radio.ok("POST", "/otbr/start")
    await commissioner.ok("POST", "/otbr/set_commissioning", {"Enable": True})
    await commissioner.ok(
        "POST", "/otbr/add_joiner", {"PSKd": "NEWXNE", "EUI64": "00000000000000aa"}
    )
    assert (await radio.ok("GET", "/otbr/get_joiner_list"))["DeviceList"][0]["Status"] == 1


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(data_dir: Path, **env_extra: str) -> Iterator[tuple[str, Path]]:
    """``cloudlet serve`` with only the gateway family on a free 127.0.0.1 port: its base URL
    and the file its output goes to."""
    port = _free_port()
    env = {
        **os.environ,
        "CLOUDLET_FAMILIES": '["gateway"]',
        "CLOUDLET_SECRET_KEY": "js-test-secret",
        "CLOUDLET_DATABASE_URL": "",
        **env_extra,
    }
    cli = Path(sys.executable).parent / "cloudlet"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(cli),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--gateway-backend",
                "simulated",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start in 30 s")
                time.sleep(0.2)
            yield base, log
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``cloudlet serve`` with only the gateway family, on a free 127.0.0.1 port."""
    with serving(tmp_path / "data") as (base, _log):
        yield base
