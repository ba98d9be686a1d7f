"""Simulated WaterEco controllers on the device link (``cloudlet simulate irrigation``).

Each controller runs the reference runtime (:mod:`cloudlet.irrigation.runtime`) and speaks
the link protocol of :mod:`cloudlet.irrigation.protocol`: it announces itself on
``aifro/<id>/online`` (retained, with a last will saying offline), publishes its status on
``aifro/<id>/state`` and answers ``aifro/<id>/cmd`` on ``aifro/<id>/ack``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from typing import Any

import orjson

from cloudlet.core.clock import Clock, SystemClock
from cloudlet.core.devicelink import BrokerAddress, LinkClient, Will
from cloudlet.integrations.progress import progress
from cloudlet.irrigation.protocol import (
    ACK,
    COMMAND,
    EVENT,
    MAX_ZONES,
    ONLINE,
    OP_SETUP,
    STATE,
    TOPIC_ROOT,
    credential_digest,
    link_credential,
    topic,
)
from cloudlet.irrigation.runtime import Controller
from cloudlet.irrigation.weather import WeatherSource

WEATHER_REFRESH_SECONDS = 1800
STOP_PUBLISH_SECONDS = 2.0


class SimulatedController:
    """One controller: runtime + MQTT link. ``tick()`` moves it to the clock's time."""

    def __init__(
        self,
        deviceid: str,
        password: str,
        *,
        broker_url: str,
        clock: Clock,
        weather: WeatherSource | None = None,
        report_interval: float = 0.0,
        keepalive: int = 30,
        topic_root: str = TOPIC_ROOT,
        credential: str | None = None,
    ) -> None:
        self.deviceid = deviceid
        self.root = topic_root
        self.clock = clock
        self.controller = Controller(deviceid, now=clock.timestamp())
        # A local weather source (a sensor, tests); None: the server's weather feed only.
        self.weather = weather
        self.report_interval = report_interval
        self.boot = uuid.uuid4().hex[:12]
        self.seq = 0
        # ``credential`` skips the (deliberately slow) derivation when it is already known.
        self._credential = credential or link_credential(deviceid, password)
        self._last_report: dict[str, Any] | None = None
        self._last_report_at = 0.0
        self._weather_at: float | None = None
        self._events_sent = 0
        self.client = LinkClient(
            BrokerAddress.parse(broker_url),
            client_id=f"{topic_root.replace('/', '-')}-{deviceid}",
            username=deviceid,
            password=self._credential,
            will=Will(topic(deviceid, ONLINE, topic_root), orjson.dumps({"online": 0})),
            keepalive=keepalive,
            on_connect=self._announce,
        )
        self.client.subscribe(topic(deviceid, COMMAND, topic_root), self._on_command)

    # -- link -------------------------------------------------------------------------

    async def start(self, *, wait: float | None = 10.0) -> None:
        await self.client.start(wait=wait)

    async def stop(self, *, clean: bool = True) -> None:
        """Disconnect; ``clean=False`` drops the connection so the broker sends the will."""
        if not clean:
            await self.client.drop()
            return
        with contextlib.suppress(ConnectionError, TimeoutError):
            goodbye = orjson.dumps({"online": 0})
            await asyncio.wait_for(
                self.client.publish(topic(self.deviceid, ONLINE, self.root), goodbye, retain=True),
                STOP_PUBLISH_SECONDS,
            )
        await self.client.stop()

    async def change_password_locally(self, password: str) -> None:
        """The owner changes the password on the controller's own screen, then it reconnects
        (and keeps retrying) with the new credential."""
        self.controller.password = password
        self._credential = link_credential(self.deviceid, password)
        self.client.password = self._credential
        await self.client.drop()
        await self.client.start(wait=None)

    async def _announce(self, client: LinkClient) -> None:
        hello = {"online": 1, "boot": self.boot, "credential": credential_digest(self._credential)}
        await client.publish(
            topic(self.deviceid, ONLINE, self.root), orjson.dumps(hello), retain=True
        )
        await self.report(force=True)

    def _envelope(self) -> dict[str, Any]:
        self.seq += 1
        return {
            "boot": self.boot,
            "seq": self.seq,
            "status": self.controller.status(self.clock.timestamp()),
        }

    async def report_events(self) -> int:
        """Publish history entries not sent yet; returns how many."""
        fresh = [e for e in self.controller.history if e["_n"] > self._events_sent]
        if not fresh:
            return 0
        events = [{k: v for k, v in e.items() if k != "_n"} | {"n": e["_n"]} for e in fresh]
        await self.client.publish(
            topic(self.deviceid, EVENT, self.root),
            orjson.dumps({"boot": self.boot, "events": events}),
        )
        self._events_sent = fresh[-1]["_n"]
        return len(events)

    async def report(self, *, force: bool = False) -> tuple[str, int] | None:
        """Publish the status when it changed (or when forced); returns its (boot, seq)."""
        now = self.clock.timestamp()
        status = self.controller.status(now)
        if not force and status == self._last_report:
            return None
        if not force and now - self._last_report_at < self.report_interval:
            return None
        envelope = self._envelope()
        self._last_report = envelope["status"]
        self._last_report_at = now
        await self.client.publish(
            topic(self.deviceid, STATE, self.root), orjson.dumps(envelope), retain=True
        )
        return self.boot, self.seq

    async def _on_command(self, _topic: str, payload: bytes) -> None:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict) or "id" not in message:
            return
        raw_args = message.get("args")
        args: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
        until = message.get("until")
        deadline = float(until) if isinstance(until, int | float) else None
        code = self.controller.command(
            str(message.get("op")), args, now=self.clock.timestamp(), deadline=deadline
        )
        if code == 0 and message.get("op") == OP_SETUP and self.controller.password:
            # The next connection authenticates with the new password's credential.
            self._credential = link_credential(self.deviceid, self.controller.password)
            self.client.password = self._credential
        envelope = self._envelope()
        ack = {"id": message["id"], "code": code} | envelope
        await self.client.publish(topic(self.deviceid, ACK, self.root), orjson.dumps(ack))
        await self.report_events()
        self._last_report = envelope["status"]
        await self.client.publish(
            topic(self.deviceid, STATE, self.root), orjson.dumps(envelope), retain=True
        )

    # -- time -------------------------------------------------------------------------

    async def tick(self) -> tuple[str, int] | None:
        """Catch up with the clock, refresh the weather when due, report changes."""
        now = self.clock.timestamp()
        due = self._weather_at is None or now - self._weather_at >= WEATHER_REFRESH_SECONDS
        if self.weather is not None and due:
            self._weather_at = now
            settings = self.controller.settings
            report = await self.weather.current(country=settings["country"], city=settings["city"])
            self.controller.apply_weather(report, now=now)
        self.controller.tick(now)
        if not self.client.connected.is_set():
            return None
        await self.report_events()
        return await self.report()

    async def run(self, *, stop: asyncio.Event, period: float = 1.0) -> None:
        while not stop.is_set():
            with contextlib.suppress(ConnectionError):
                await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)


def device_id(prefix: str, index: int) -> str:
    """Simulated device ids: a hex prefix and a hex index, 16 characters."""
    return f"{prefix}{index:0{16 - len(prefix)}X}"


async def _main(args: argparse.Namespace) -> int:
    clock = SystemClock()
    started = time.monotonic()
    sims = [
        SimulatedController(
            device_id(args.prefix, i),
            args.password,
            broker_url=args.broker,
            clock=clock,
            report_interval=args.report_interval,
            topic_root=args.topic_root,
        )
        for i in range(args.devices)
    ]
    for sim in sims:
        sim.controller.settings["connectedvalves"] = args.zones
    stop = asyncio.Event()
    # A controller logs in once its owner has added it (00101 with its password): until
    # then the broker refuses it and it retries, as a real one does.
    print(
        f"{len(sims)} controllers ({sims[0].deviceid} .. {sims[-1].deviceid}, password "
        f"{args.password!r}) connect to {args.broker} once their owner has added them"
    )
    for sim in sims:
        await sim.start(wait=None)
    tasks = [asyncio.create_task(s.run(stop=stop)) for s in sims]
    try:
        with progress("controllers connected", len(sims)) as advance:

            async def connected(sim: SimulatedController) -> None:
                await sim.client.connected.wait()
                advance(1)

            limit = args.duration if args.duration > 0 else None
            with contextlib.suppress(TimeoutError):  # wait_for cancels the waits left
                await asyncio.wait_for(asyncio.gather(*(connected(s) for s in sims)), limit)
        if args.duration > 0:
            await asyncio.sleep(max(0.0, started + args.duration - time.monotonic()))
        else:
            await asyncio.Event().wait()
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in sims), return_exceptions=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cloudlet simulate irrigation")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--password", default="12345678")
    parser.add_argument("--prefix", default="11010F")
    parser.add_argument("--report-interval", type=float, default=5.0)
    parser.add_argument(
        "--zones",
        type=int,
        choices=range(1, MAX_ZONES + 1),
        default=MAX_ZONES,
        metavar="1-52",
        help="connected zones (connectedvalves) of each controller (default: 52)",
    )
    parser.add_argument("--topic-root", default=TOPIC_ROOT)
    parser.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until ^C")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 0
