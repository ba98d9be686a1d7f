"""Real weather for every controller that names a city, from a local Open-Meteo stand-in.

A local HTTP server answers Open-Meteo's geocoding and forecast calls with answers in
Open-Meteo's documented JSON shape (fixtures/open_meteo/); nothing reaches the internet.
The server fetches each city once per round and sends the report over the link; the
controller adjusts, pauses for rain and skips programs on forecast rain.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cloudlet.core.clock import FrozenClock
from cloudlet.irrigation.api import WEATHER_KEY
from cloudlet.irrigation.models import IrrigationEvent
from cloudlet.irrigation.weather import WeatherFeed, zimmerman_adjust
from tests.conftest import ClientFactory, services_of
from tests.irrigation.conftest import (
    DEVICE_ID,
    SimPool,
    add_device,
    link_settings,
    register_and_login,
    tick,
)

FIXTURES = Path(__file__).parent / "fixtures" / "open_meteo"


class OpenMeteoStandIn:
    """Serves recorded-shape answers and remembers what it was asked."""

    def __init__(self) -> None:
        self.forecast = "forecast_shenyang_rain_ahead.json"
        self.requests: list[tuple[str, dict[str, str]]] = []

    def app(self) -> Starlette:
        async def search(request: Request) -> JSONResponse:
            self.requests.append(("search", dict(request.query_params)))
            return JSONResponse(json.loads((FIXTURES / "geocoding_shenyang.json").read_text()))

        async def forecast(request: Request) -> JSONResponse:
            self.requests.append(("forecast", dict(request.query_params)))
            return JSONResponse(json.loads((FIXTURES / self.forecast).read_text()))

        return Starlette(routes=[Route("/v1/search", search), Route("/v1/forecast", forecast)])


@pytest.fixture
async def open_meteo() -> AsyncIterator[tuple[OpenMeteoStandIn, str]]:
    stand_in = OpenMeteoStandIn()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(stand_in.app(), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield stand_in, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def events(client: httpx.AsyncClient) -> list[tuple[str, dict[str, Any]]]:
    async with services_of(client).db.session() as session:
        rows = await session.scalars(select(IrrigationEvent).order_by(IrrigationEvent.id))
        return [(r.event, r.details) for r in rows]


async def test_weather_feed_adjusts_pauses_and_skips(
    make_client: ClientFactory,
    sim_pool: SimPool,
    topic_root: str,
    clock: FrozenClock,
    open_meteo: tuple[OpenMeteoStandIn, str],
) -> None:
    stand_in, base = open_meteo
    settings = link_settings(
        topic_root,
        weather_source="open-meteo",
        weather_geocode_url=f"{base}/v1/search",
        weather_forecast_url=f"{base}/v1/forecast",
    )
    client = await make_client("irrigation", irrigation=settings)
    token = await register_and_login(client)
    auth = {"Authorization": token}
    await add_device(client, token)
    sim = await sim_pool.factory(client)()
    url = f"/v1/device/{DEVICE_ID}"
    now = clock.now()
    program = {
        "week": 0x7F,
        "hour": now.hour,
        "minute": (now.minute + 2) % 60,
        "enabled": 1,
        "tasklist": [1],
        "name": "Lawn",
    }
    setup = {"country": "China", "city": "Shenyang", "timerdata": [program]}
    assert (await client.put(f"{url}/setup", headers=auth, json={"setup": setup})).json()[
        "code"
    ] == 0
    await client.post(f"{url}/valvessetup", headers=auth, json={"valvesindex": 1, "aiwater": 1})

    feed: WeatherFeed = services_of(client).extras[WEATHER_KEY]
    assert await feed.refresh() == 1
    assert [kind for kind, _ in stand_in.requests] == ["search", "forecast"]
    assert stand_in.requests[0][1]["name"] == "Shenyang"
    assert stand_in.requests[1][1]["forecast_hours"] == "24"
    await tick(client, sim, clock, 1)
    weather = (await client.get(f"{url}/status?flag=128", headers=auth)).json()["status"]
    assert weather == {
        "deviceid": DEVICE_ID,
        "onlinestatus": 1,
        "weather": 26,  # WMO 3 overcast → Yahoo 26 cloudy
        "weathertemperature": 26,
        "weatherwindpower": 2,  # 11.2 km/h is Beaufort 2 (6 to under 12 km/h)
        "weatherhumidity": 47,
        "aiadjustwater": zimmerman_adjust(humidity=47, temp_c=26.0, rain_mm=0.0),
    }
    assert weather["aiadjustwater"] == 18  # 100 + (30 - 47) + 4·(78.8 - 70) = 118.2 %

    # 5.1 mm forecast within 24 h (>= 3.2 mm): the program due in two minutes is skipped.
    await tick(client, sim, clock, 150)
    skipped = [d for e, d in await events(client) if e == "program skipped"]
    assert skipped and skipped[-1]["reason"] == "rain forecast"

    # It rains now: a manual run stops at once and the controller pauses for rain.
    started = await client.post(url, headers=auth, json={"delaytime": 0, "tasklist": [1]})
    assert started.json()["code"] == 0
    stand_in.forecast = "forecast_shenyang_raining.json"
    assert await feed.refresh() == 1
    await tick(client, sim, clock, 1)
    status = (await client.get(f"{url}/status?flag=0x81", headers=auth)).json()["status"]
    assert (status["weather"], status["devicestatus"]) == (12, 2)  # showers; raining
    stopped = [d for e, d in await events(client) if e == "task stopped"]
    assert stopped[-1]["reason"] == "rain"
    # Geocoding is done once per city.
    assert [kind for kind, _ in stand_in.requests].count("search") == 1


async def test_unreachable_weather_says_so(
    make_client: ClientFactory, sim_pool: SimPool, topic_root: str, clock: FrozenClock
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens here
    settings = link_settings(
        topic_root,
        weather_source="open-meteo",
        weather_geocode_url=f"http://127.0.0.1:{port}/v1/search",
        weather_forecast_url=f"http://127.0.0.1:{port}/v1/forecast",
    )
    client = await make_client("irrigation", irrigation=settings)
    token = await register_and_login(client)
    await add_device(client, token)
    sim = await sim_pool.factory(client)()
    auth = {"Authorization": token}
    setup = {"setup": {"country": "China", "city": "Shenyang"}}
    await client.put(f"/v1/device/{DEVICE_ID}/setup", headers=auth, json=setup)
    assert await services_of(client).extras[WEATHER_KEY].refresh() == 1
    await tick(client, sim, clock, 1)
    answer = await client.get(f"/v1/device/{DEVICE_ID}/status?flag=128", headers=auth)
    assert answer.json()["status"]["weather"] == -3  # "can not connect to the weather server"
