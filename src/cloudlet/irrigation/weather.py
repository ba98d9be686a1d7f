"""Weather sources for the controller runtime: one interface, an offline default, a real one.

The runtime only needs today's Yahoo weather code, temperature, wind, humidity and an AI
adjustment percent. The AI adjustment follows the Zimmerman method (OpenSprinkler's
weather service): 100 + (30 - humidity) + 4 * (tempF - 70) - 200 * rain_in, clamped to
0..200 %, reported as the difference from 100 % (Aifro's ``aiadjustwater`` may be negative).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from cloudlet.irrigation.runtime import Weather

log = logging.getLogger("cloudlet.irrigation.weather")
OPEN_METEO_GEOCODE = "https://geocoding-api.open-meteo.com/v1/search"
OPEN_METEO_FORECAST = "https://api.open-meteo.com/v1/forecast"

UNREACHABLE = -3  # "Can not connect to the weather forecast server."


class WeatherSource(Protocol):
    async def current(self, *, country: str, city: str) -> Weather: ...


class OfflineWeather:
    """No network: code -3 and no adjustment, so schedules run as configured."""

    async def current(self, *, country: str, city: str) -> Weather:
        return Weather(code=UNREACHABLE)


class StaticWeather:
    """Always the same report (tests, demos)."""

    def __init__(self, weather: Weather) -> None:
        self.weather = weather

    async def current(self, *, country: str, city: str) -> Weather:
        return Weather(**vars(self.weather))


def zimmerman_adjust(*, humidity: float, temp_c: float, rain_mm: float) -> int:
    temp_f = temp_c * 9 / 5 + 32
    level = 100 + (30 - humidity) + 4 * (temp_f - 70) - 200 * (rain_mm / 25.4)
    return round(max(0.0, min(200.0, level)) - 100)


# WMO weather interpretation codes (Open-Meteo) -> Yahoo codes of the Aifro table.
WMO_TO_YAHOO: dict[int, int] = {
    0: 32,
    1: 34,
    2: 30,
    3: 26,
    45: 20,
    48: 20,
    51: 9,
    53: 9,
    55: 9,
    56: 8,
    57: 8,
    61: 11,
    63: 12,
    65: 12,
    66: 10,
    67: 10,
    71: 14,
    73: 16,
    75: 41,
    77: 16,
    80: 40,
    81: 11,
    82: 12,
    85: 42,
    86: 43,
    95: 4,
    96: 17,
    99: 17,
}


class OpenMeteoWeather:
    """Open-Meteo (no key): geocode the city once, then read the current conditions and the
    next 24 hours' precipitation."""

    def __init__(
        self,
        *,
        geocode_url: str = OPEN_METEO_GEOCODE,
        forecast_url: str = OPEN_METEO_FORECAST,
        timeout: float = 10.0,
        transport: Any = None,
    ) -> None:
        self.geocode_url, self.forecast_url = geocode_url, forecast_url
        self.timeout = timeout
        self.transport = transport  # an httpx transport (tests use httpx.MockTransport)
        self._places: dict[tuple[str, str], tuple[float, float]] = {}

    async def current(self, *, country: str, city: str) -> Weather:
        import httpx

        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                place = await self._place(client, country, city)
                if place is None:
                    return Weather(code=-2)  # "Can not obtain the weather forecast of the city"
                answer = await client.get(
                    self.forecast_url,
                    params={
                        "latitude": place[0],
                        "longitude": place[1],
                        "current": "temperature_2m,relative_humidity_2m,precipitation,"
                        "weather_code,wind_speed_10m",
                        "hourly": "precipitation",
                        "forecast_hours": 24,
                    },
                )
                answer.raise_for_status()
                body = answer.json()
                now: dict[str, Any] = body["current"]
                hourly = (body.get("hourly") or {}).get("precipitation") or []
                forecast = sum(float(v) for v in hourly[:24] if isinstance(v, int | float))
        except (httpx.HTTPError, KeyError, ValueError, TypeError):
            return Weather(code=UNREACHABLE)
        temp = float(now.get("temperature_2m", 0.0))
        humidity = float(now.get("relative_humidity_2m", 0.0))
        return Weather(
            code=WMO_TO_YAHOO.get(int(now.get("weather_code", -1)), 3200),
            temperature=round(temp),
            windpower=beaufort(float(now.get("wind_speed_10m", 0.0))),
            humidity=round(humidity),
            aiadjustwater=zimmerman_adjust(
                humidity=humidity, temp_c=temp, rain_mm=float(now.get("precipitation", 0.0))
            ),
            rainforecast=round(forecast, 1),
        )

    async def _place(self, client: Any, country: str, city: str) -> tuple[float, float] | None:
        key = (country, city)
        if key not in self._places:
            answer = await client.get(self.geocode_url, params={"name": city, "count": 5})
            answer.raise_for_status()
            results = answer.json().get("results") or []
            match = [
                r
                for r in results
                if not country or country.lower() in str(r.get("country", "")).lower()
            ] or results
            if not match:
                return None
            self._places[key] = (float(match[0]["latitude"]), float(match[0]["longitude"]))
        return self._places[key]


def beaufort(kmh: float) -> int:
    """Wind grade (Beaufort) from km/h."""
    limits = (1, 6, 12, 20, 29, 39, 50, 62, 75, 89, 103, 118)
    for grade, limit in enumerate(limits):
        if kmh < limit:
            return grade
    return 12


Place = tuple[str, str]  # (country, city) as the controller's setup names them
Sender = Callable[[str, Weather], Awaitable[None]]
PlacesOf = Callable[[], Awaitable[dict[Place, list[str]]]]


class WeatherFeed:
    """The server's weather for its controllers: every ``period`` seconds each (country,
    city) that an online controller names is fetched once, and every such controller is sent
    the report over the link (Appendix 1's mask-128 fields, the rain forecast)."""

    def __init__(
        self, source: WeatherSource, *, places: PlacesOf, send: Sender, period: float
    ) -> None:
        self.source, self.places, self.send, self.period = source, places, send, period
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> int:
        """One round; returns how many controllers were sent a report."""
        sent = 0
        for (country, city), devices in (await self.places()).items():
            try:
                report = await self.source.current(country=country, city=city)
            except Exception:  # a source must never stop the feed
                log.exception("weather for %s, %s failed", city, country)
                report = Weather(code=UNREACHABLE)
            for deviceid in devices:
                try:
                    await self.send(deviceid, report)
                    sent += 1
                except Exception:
                    log.info("weather not delivered to %s", deviceid)
        return sent

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="irrigation-weather")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                await self.refresh()
            except Exception:
                log.exception("weather round failed")
