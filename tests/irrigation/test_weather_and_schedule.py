"""Weather sources, and a program seen through the server as the clock moves."""

from __future__ import annotations

from typing import Any

import httpx

from cloudlet.core.clock import FrozenClock
from cloudlet.irrigation.runtime import Weather
from cloudlet.irrigation.weather import (
    OfflineWeather,
    OpenMeteoWeather,
    StaticWeather,
    beaufort,
    zimmerman_adjust,
)
from tests.conftest import admin_headers
from tests.irrigation.conftest import DEVICE_ID, SimFactory, add_device, register_and_login, tick


async def test_offline_default_reports_unreachable() -> None:
    assert await OfflineWeather().current(country="", city="") == Weather(code=-3)


def test_zimmerman_and_beaufort() -> None:
    assert zimmerman_adjust(humidity=30, temp_c=21.1111, rain_mm=0) == 0
    assert zimmerman_adjust(humidity=80, temp_c=10, rain_mm=25.4) == -100
    assert zimmerman_adjust(humidity=10, temp_c=40, rain_mm=0) == 100
    assert [beaufort(k) for k in (0, 5, 30, 200)] == [0, 1, 5, 12]


async def test_open_meteo_behind_the_same_interface() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "geocoding" in request.url.host:
            return httpx.Response(
                200, json={"results": [{"country": "China", "latitude": 41.8, "longitude": 123.4}]}
            )
        return httpx.Response(
            200,
            json={
                "current": {
                    "temperature_2m": 26.2,
                    "relative_humidity_2m": 47,
                    "precipitation": 0.0,
                    "weather_code": 3,
                    "wind_speed_10m": 14.0,
                }
            },
        )

    source = OpenMeteoWeather(transport=httpx.MockTransport(answer))
    report = await source.current(country="China", city="Shenyang")
    assert (report.code, report.temperature, report.humidity, report.windpower) == (26, 26, 47, 3)
    assert report.aiadjustwater == zimmerman_adjust(humidity=47, temp_c=26.2, rain_mm=0)

    def down(_request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no network")

    offline = OpenMeteoWeather(transport=httpx.MockTransport(down))
    assert (await offline.current(country="", city="x")).code == -3


async def test_program_and_rain_seen_through_the_server(
    client: httpx.AsyncClient, make_sim: SimFactory, clock: FrozenClock
) -> None:
    token = await register_and_login(client)
    auth = {"Authorization": token}
    await add_device(client, token)
    weather = StaticWeather(Weather(code=32, temperature=20, aiadjustwater=20))
    sim = await make_sim(weather=weather)
    await tick(client, sim, clock, 1)
    now = clock.now()
    program: dict[str, Any] = {
        "week": 0x7F,
        "hour": (now.hour + 1) % 24,
        "minute": 0,
        "enabled": 1,
        "delay": 0,
        "tasklist": [2],
        "name": "Lawn",
    }
    answer = await client.put(
        f"/v1/device/{DEVICE_ID}/setup",
        headers=auth,
        json={"setup": {"timerdata": [program], "maxadjustvalue": 50, "gallonperminute": 600}},
    )
    assert answer.json()["status"]["timerdata"][0]["name"] == "Lawn"
    await client.post(
        f"/v1/device/{DEVICE_ID}/valvessetup",
        headers=auth,
        json={"valvesindex": 2, "aiwater": 1, "watertime": 600},
    )

    await tick(client, sim, clock, 3600 - now.minute * 60 - now.second + 30)
    status = (await client.get(f"/v1/device/{DEVICE_ID}/status?flag=0x45", headers=auth)).json()[
        "status"
    ]
    assert (status["runtaskindex"], status["runtasklist"]) == (1, [2])
    zone = status["valvesstatus"][1]
    assert (zone["aiadjusttime"], zone["status"], zone["wateredtime"]) == (60, 1, 30)
    assert status["timerdata"][0]["lasttime"] == 660 - 30

    weather.weather = Weather(code=11, temperature=12)  # showers
    sim._weather_at = None  # refresh now
    await tick(client, sim, clock, 60)
    status = (
        await client.get(f"/v1/device/{DEVICE_ID}/status?flag=0x100001", headers=auth)
    ).json()["status"]
    assert (status["devicestatus"], status["runtasklist"]) == (2, [])
    assert status["usedwater"] == 6 * 90 // 60  # 6 gal/min for 90 s

    listing = await client.get("/api/v1/irrigation/devices", headers=await admin_headers(client))
    assert listing.status_code == 200
    assert listing.json()[0] | {"first_seen": None, "state_at": None} == {
        "deviceid": DEVICE_ID,
        "owned": True,
        "online": True,
        "first_seen": None,
        "state_at": None,
        "devicestatus": 2,
        "usedwater": 9,
    }
    assert (await client.get("/api/v1/irrigation/stats")).status_code == 401


async def test_history_with_skip_reasons_reaches_the_server(
    client: httpx.AsyncClient, make_sim: SimFactory, clock: FrozenClock
) -> None:
    token = await register_and_login(client)
    auth = {"Authorization": token}
    await add_device(client, token)
    sim = await make_sim()
    now = clock.now()
    hour = (now.hour + 1) % 24
    programs = [
        {"week": 0x7F, "hour": hour, "minute": m, "enabled": 1, "tasklist": [z]}
        for m, z in ((0, 3), (30, 4))
    ]
    answer = await client.put(
        f"/v1/device/{DEVICE_ID}/setup",
        headers=auth,
        json={"setup": {"timerdata": programs, "delaytime": 0}},
    )
    assert answer.json()["code"] == 0
    to_first = 3600 - now.minute * 60 - now.second + 1
    await tick(client, sim, clock, to_first + 400)  # program 1 waters zone 3 (300 s)
    await client.put(
        f"/v1/device/{DEVICE_ID}/setup", headers=auth, json={"setup": {"delaytime": -1}}
    )  # pause before program 2
    await tick(client, sim, clock, 1800)
    await sim.report_events()

    headers = await admin_headers(client)

    async def stored() -> bool:
        answer = await client.get(
            f"/api/v1/irrigation/devices/{DEVICE_ID}/history", headers=headers
        )
        return any(e["event"] == "program skipped" for e in answer.json())

    from tests.irrigation.conftest import link_of

    await link_of(client).wait_for(stored)
    history = (
        await client.get(f"/api/v1/irrigation/devices/{DEVICE_ID}/history", headers=headers)
    ).json()
    events = [(e["event"], e.get("zone"), e.get("reason")) for e in reversed(history)]
    assert events == [
        ("task started", None, None),
        ("zone started", 3, None),
        ("zone watered", 3, None),
        ("task finished", None, None),
        ("program skipped", None, "watering delayed"),
    ]
    assert history[-1]["zones"] == [3]
