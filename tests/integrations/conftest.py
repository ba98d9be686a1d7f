"""Integration fixtures: apps with every family, a broker, simulated controllers and an MQTT
client standing in for Home Assistant."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiomqtt
import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from cloudlet.core.devicelink import BrokerAddress
from cloudlet.integrations.homeassistant import EXTRA_KEY, HomeAssistantBridge
from cloudlet.irrigation.homeassistant import IrrigationEntities
from cloudlet.irrigation.sim import SimulatedController
from cloudlet.ota.homeassistant import OtaEntities
from tests.conftest import ClientFactory, admin_headers, services_of
from tests.irrigation.conftest import (
    add_device,
    link_of,
    link_settings,
    register_and_login,
    wait_online,
    wait_state,
)
from tests.ota.conftest import Fleet

DEVICE_ID = "11010F60BA50CF0D"
DEVICE_PASSWORD = "12345678"


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


def ha_settings(unique: str, **extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "embedded_mqtt_port": 0,
        "mqtt_url": os.environ.get("CLOUDLET_TEST_MQTT_URL") or None,
        "discovery_prefix": f"ha-{unique}",
        "node_id": f"node{unique}",
        "base_topic": f"cloudlet-{unique}",
        "poll_seconds": 30.0,  # tests wake the bridge themselves
        **extra,
    }


def bridge_of(client: httpx.AsyncClient) -> HomeAssistantBridge:
    bridge: HomeAssistantBridge = services_of(client).extras[EXTRA_KEY]
    return bridge


def irrigation_entities(client: httpx.AsyncClient) -> IrrigationEntities:
    source = bridge_of(client).sources["irrigation"]
    assert isinstance(source, IrrigationEntities)
    return source


def ota_entities(client: httpx.AsyncClient) -> OtaEntities:
    source = bridge_of(client).sources["ota"]
    assert isinstance(source, OtaEntities)
    return source


@pytest.fixture
async def app(make_client: ClientFactory, unique: str) -> httpx.AsyncClient:
    """Every family but the gateway, with Home Assistant discovery on."""
    return await make_client(
        "scale",
        "irrigation",
        "ota",
        irrigation=link_settings(f"aifro-{unique}"),
        homeassistant=ha_settings(unique),
        metrics={"min_refresh_seconds": 0},
    )


async def online_controller(
    app: httpx.AsyncClient, clock: FrozenClock, unique: str
) -> SimulatedController:
    """A simulated controller with 3 zones, added by its owner, online and reported."""
    await add_device(app, await register_and_login(app), DEVICE_ID, DEVICE_PASSWORD)
    sim = SimulatedController(
        DEVICE_ID,
        DEVICE_PASSWORD,
        broker_url=link_of(app).url,
        clock=clock,
        topic_root=f"aifro-{unique}",
    )
    sim.controller.settings["connectedvalves"] = 3
    sim.controller.zones[1].valvesname = "Roses"
    await sim.start()
    await wait_online(app, DEVICE_ID, True)
    await wait_state(app, sim)
    return sim


async def retire(app: httpx.AsyncClient, sim: SimulatedController) -> None:
    await asyncio.wait_for(sim.stop(), 10)
    # Let the server store the goodbye before the app stops (not cancelled mid-write).
    with contextlib.suppress(TimeoutError):
        await wait_online(app, DEVICE_ID, False)


@pytest.fixture
async def controller(
    app: httpx.AsyncClient, clock: FrozenClock, unique: str
) -> AsyncIterator[SimulatedController]:
    sim = await online_controller(app, clock, unique)
    yield sim
    await retire(app, sim)


class Watcher:
    """What Home Assistant would see: every retained or live message on some topics."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: dict[str, bytes] = {}
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for message in self.client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            async with self._changed:
                self.messages[str(message.topic)] = payload
                self._changed.notify_all()

    async def wait(
        self,
        topic: str,
        payload: bytes | None = None,
        limit: float = 10.0,
        *,
        where: Callable[[bytes], bool] | None = None,
    ) -> bytes:
        """Until ``topic`` carries ``payload`` (or a payload ``where`` accepts; else any
        non-empty payload)."""

        def ready() -> bool:
            got = self.messages.get(topic)
            if got is not None and where is not None:
                return where(got)
            return bool(got) if payload is None else got == payload

        async def until() -> None:
            async with self._changed:
                while not ready():
                    await self._changed.wait()

        await asyncio.wait_for(until(), limit)
        return self.messages[topic]

    async def publish(self, topic: str, payload: bytes) -> None:
        await self.client.publish(topic, payload, qos=1)


@pytest.fixture
async def watch(app: httpx.AsyncClient) -> AsyncIterator[Any]:
    """Subscribe a Home Assistant stand-in to the discovery prefix and Cloudlet's topics."""
    bridge = bridge_of(app)
    address = BrokerAddress.parse(bridge.url)
    async with aiomqtt.Client(
        address.host,
        address.port,
        identifier=f"ha-test-{uuid.uuid4().hex[:8]}",
        username=address.username,
        password=address.password,
    ) as client:
        watcher = Watcher(client)
        await client.subscribe(f"{bridge.topics.prefix}/#", qos=1)
        await client.subscribe(f"{bridge.topics.base}/#", qos=1)
        watcher._task = asyncio.create_task(watcher._run())
        try:
            yield watcher
        finally:
            watcher._task.cancel()


async def ota_fleet(client: httpx.AsyncClient) -> Fleet:
    admin = await admin_headers(client)
    r = await client.post("/api/v1/ota/products", json={"name": "meters"}, headers=admin)
    assert r.status_code == 201, r.text
    return Fleet(client, admin, r.json()["id"], r.json()["key"], {})
