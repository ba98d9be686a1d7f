"""Irrigation fixtures: an app with a device link (embedded broker or CLOUDLET_TEST_MQTT_URL)
and simulated controllers that share the test's frozen clock."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from cloudlet.irrigation.api import EXTRA_KEY
from cloudlet.irrigation.link import IrrigationLink
from cloudlet.irrigation.models import IrrigationDevice
from cloudlet.irrigation.sim import SimulatedController
from cloudlet.irrigation.weather import WeatherSource
from tests.conftest import ClientFactory, services_of

DEVICE_ID = "11010F60BA50CF0D"
DEVICE_PASSWORD = "12345678"
USER = {
    "name": "conan123456",
    "passwd": "Aa234598289432348235524334",
    "email": "whatyouname@gmail.com",
}


@pytest.fixture
def topic_root() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def link_settings(topic_root: str, **extra: Any) -> dict[str, Any]:
    return {
        "embedded_mqtt_port": 0,
        "command_timeout_seconds": 2.0,
        "topic_root": topic_root,
        "mqtt_url": os.environ.get("CLOUDLET_TEST_MQTT_URL") or None,
        **extra,
    }


@pytest.fixture
async def client(make_client: ClientFactory, topic_root: str) -> httpx.AsyncClient:
    return await make_client("irrigation", irrigation=link_settings(topic_root))


def link_of(client: httpx.AsyncClient) -> IrrigationLink:
    link: IrrigationLink = services_of(client).extras[EXTRA_KEY]
    return link


SimFactory = Callable[..., Awaitable[SimulatedController]]


class SimPool:
    """Simulated controllers attached to one test app, stopped at the end of the test."""

    def __init__(self, clock: FrozenClock, topic_root: str) -> None:
        self.clock = clock
        self.topic_root = topic_root
        self.sims: list[SimulatedController] = []

    def factory(self, client: httpx.AsyncClient) -> SimFactory:
        link = link_of(client)

        async def make(
            deviceid: str = DEVICE_ID,
            password: str = DEVICE_PASSWORD,
            *,
            weather: WeatherSource | None = None,
            status: dict[str, Any] | None = None,
        ) -> SimulatedController:
            sim = SimulatedController(
                deviceid,
                password,
                broker_url=link.url,
                clock=self.clock,
                weather=weather,
                topic_root=self.topic_root,
            )
            if status is not None:
                sim.controller.load(status, now=self.clock.timestamp())
                sim._weather_at = self.clock.timestamp()  # keep the loaded weather
            await sim.start()
            self.sims.append(sim)
            await wait_online(client, deviceid, True)
            await wait_state(client, sim)
            # The server sets the controller's clock on its first report (autoadjusttime);
            # let that finish before the test moves the clock.
            await link.settled()
            await wait_state(client, sim)
            return sim

        return make

    async def close(self) -> None:
        # Each stop in its own task, bounded: a stop awaited straight from the fixture
        # finalizer was seen to wait forever on Mosquitto runs.
        for sim in self.sims:
            await asyncio.wait_for(sim.stop(), 10)


@pytest.fixture
async def sim_pool(clock: FrozenClock, topic_root: str) -> AsyncIterator[SimPool]:
    pool = SimPool(clock, topic_root)
    yield pool
    await pool.close()


@pytest.fixture
def make_sim(client: httpx.AsyncClient, sim_pool: SimPool) -> SimFactory:
    """Start a simulated controller connected to the client's broker, online on the server."""
    return sim_pool.factory(client)


ClientWithSims = Callable[..., Awaitable[tuple[httpx.AsyncClient, SimFactory]]]


@pytest.fixture
def make_sim_on(make_client: ClientFactory, sim_pool: SimPool, topic_root: str) -> ClientWithSims:
    """An app with extra irrigation settings, and a controller factory bound to it."""

    async def make(**extra: Any) -> tuple[httpx.AsyncClient, SimFactory]:
        client = await make_client("irrigation", irrigation=link_settings(topic_root, **extra))
        return client, sim_pool.factory(client)

    return make


async def _device(client: httpx.AsyncClient, deviceid: str) -> IrrigationDevice | None:
    from sqlalchemy import select

    async with services_of(client).db.session() as session:
        row: IrrigationDevice | None = await session.scalar(
            select(IrrigationDevice).where(IrrigationDevice.deviceid == deviceid)
        )
        return row


async def wait_online(
    client: httpx.AsyncClient, deviceid: str, online: bool, *, limit: float = 5.0
) -> None:
    async def ready() -> bool:
        device = await _device(client, deviceid)
        return device is not None and device.online == online

    await link_of(client).wait_for(ready, limit)


async def wait_state(client: httpx.AsyncClient, sim: SimulatedController) -> None:
    """Until the server has stored the controller's latest report."""
    mark = (sim.boot, sim.seq)

    async def ready() -> bool:
        seen = link_of(client).seen(sim.deviceid)
        return seen is not None and seen[0] == mark[0] and seen[1] >= mark[1]

    await link_of(client).wait_for(ready)


async def tick(
    client: httpx.AsyncClient, sim: SimulatedController, clock: FrozenClock, seconds: float
) -> None:
    """Move the clock, let the controller catch up and the server store its report.

    Server-initiated commands (the clock setting a report may trigger) finish before the
    clock jumps: a jump of minutes while one is in flight would expire it, which real
    time never does."""
    link = link_of(client)
    await link.settled()
    clock.advance(seconds)
    await sim.tick()
    await wait_state(client, sim)
    await link.settled()


async def register_and_login(client: httpx.AsyncClient, user: dict[str, str] = USER) -> str:
    answer = await client.post("/v1/rootusers", json=user)
    assert answer.status_code == 201, answer.text
    answer = await client.post(
        "/v1/user/login", json={"name": user["name"], "passwd": user["passwd"]}
    )
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def add_device(
    client: httpx.AsyncClient,
    token: str,
    deviceid: str = DEVICE_ID,
    password: str = DEVICE_PASSWORD,
) -> None:
    answer = await client.post(
        "/v1/devices",
        headers={"Authorization": token},
        json={"deviceid": deviceid, "password": password, "type": 1, "descript": "d", "icon": 0},
    )
    assert answer.status_code == 201, answer.text


async def owned_controller(
    client: httpx.AsyncClient, make_sim: SimFactory
) -> tuple[dict[str, str], SimulatedController]:
    """The owner registers and adds DEVICE_ID (its broker login is made then); the
    controller connects. The owner's auth header and the controller."""
    token = await register_and_login(client)
    await add_device(client, token)
    return {"Authorization": token}, await make_sim()
