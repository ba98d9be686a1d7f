"""The WaterEco controller runtime: zones, programs and watering, driven by ``tick(now)``.

Pure and synchronous: no I/O, no clock of its own. The simulator (and any real firmware
port) feeds it the time, weather and link commands and publishes ``status()``. Times are
UTC seconds; local time is UTC + ``devicetimezone`` hours.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cloudlet.irrigation.errors import (
    INVALID_OPERATION,
    INVALID_PARAMS,
    INVALID_SETUP,
    NO_ACK,
    PROGRAM_COLLISION,
    TASK_RUNNING,
    AifroError,
)
from cloudlet.irrigation.protocol import (
    MAX_PROGRAMS,
    MAX_ZONES,
    OP_SETUP,
    OP_START,
    OP_STOP,
    OP_VALVES_SETUP,
    OP_WEATHER,
)
from cloudlet.irrigation.schemas import validate_setup, validate_start, validate_valves_setup
from cloudlet.irrigation.status import RUN_TASK_LEFT, RUN_ZONE_LEFT

DAY = 86400
DEFAULT_WATERTIME = 300  # "The default time is 5 minutes."
# Yahoo codes that mean water is falling (rain, showers, drizzle, thunder, sleet, hail).
RAIN_CODES = frozenset([0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 17, 18, 35, 37, 38, 39, 40, 45, 47])
HISTORY_LENGTH = 200
WEATHER_FIELDS = (
    "weather",
    "weathertemperature",
    "weatherwindpower",
    "weatherhumidity",
    "aiadjustwater",
)
# Blocks a manual start goes through (the owner is at the controller's app, deciding).
MANUAL_OVERRIDES = frozenset({"rain delay", "watering delayed"})
# Device status values (Appendix 1, devicestatus).
WATERING, IDLE, RAINING, AFTER_RAIN, COLD = 0, 1, 2, 3, 4
# Zone status values.
ZONE_NOT_WATERED, ZONE_WATERING, ZONE_WATERED, ZONE_DELAYING = 0, 1, 2, 3


@dataclass
class Weather:
    """What a weather source reports (Appendix 1, setup mask 128)."""

    code: int = -3
    temperature: int = 0  # degrees Celsius
    windpower: int = 0
    humidity: int = 0
    aiadjustwater: int = 0  # percent
    # Millimetres of rain forecast for the next 24 hours (link only; not an Appendix field).
    rainforecast: float = 0.0


@dataclass
class Zone:
    index: int
    enabled: int = 1
    valvesname: str = ""
    valvesicon: int = 0
    valvesiconfile: str = ""
    watertime: int = DEFAULT_WATERTIME
    wateredtime: float = 0.0
    totalwateredtime: float = 0.0
    aiwater: int = 0
    status: int = ZONE_NOT_WATERED
    lastwaterdate: int = 0
    delaytime: float = 0.0
    planttype: int = 0
    soiltype: int = 0
    cycleandsoak: int = 0


@dataclass
class Program:
    time: int = 0
    interval: int = 0
    week: int = 0
    hour: int = 0
    minute: int = 0
    enabled: int = 0
    delay: int = 0
    tasklist: list[int] = field(default_factory=list)
    name: str = ""
    addedflag: int = 0
    # Cloudlet extension (docs/irrigation.md): minutes each zone of this program waters,
    # the seed's "1 byte for duration of watering"; 0 = each zone's own watertime.
    duration: int = 0

    @property
    def configured(self) -> bool:
        return bool(self.addedflag or self.tasklist)

    def to_wire(self, *, running: bool, remaining: int) -> dict[str, Any]:
        # The vendor example shows the week form without "time"; the time form has no week.
        head: dict[str, Any] = (
            {"time": self.time, "interval": self.interval}
            if self.time
            else {
                "week": self.week,
                "hour": self.hour,
                "minute": self.minute,
                "interval": self.interval,
            }
        )
        wire = head | {
            "enabled": self.enabled,
            "delay": self.delay,
            "status": 1 if running else 0,
            "lasttime": remaining if running else 0,
            "tasklist": list(self.tasklist),
            "name": self.name,
            "addedflag": self.addedflag,
        }
        if self.duration:
            wire["duration"] = self.duration
        return wire


def program_slots(programs: list[Program]) -> list[Program]:
    """The controller's 8 program slots: the configured ones, then empty slots."""
    return (programs + [Program() for _ in range(MAX_PROGRAMS)])[:MAX_PROGRAMS]


@dataclass
class Run:
    """One watering task in progress: a manual start (index 0) or program ``index`` 1..8."""

    index: int
    zones: list[int]
    durations: dict[int, int]
    between: int  # seconds between zones
    position: int = 0
    phase: str = "delay"  # delay | water | soak | between
    phase_left: float = 0.0
    zone_left: float = 0.0
    chunk_left: float = 0.0

    @property
    def current(self) -> int:
        return self.zones[self.position]

    def remaining(self, chunk: int, soak: int) -> float:
        """Seconds until this task is over: the current phase, the current zone (or, before
        it starts, its whole run), every zone after it and the delays between them, with
        cycle-and-soak pauses."""
        total = self.phase_left if self.phase in ("delay", "soak", "between") else 0.0
        watering = self.phase in ("water", "soak")
        left_here = self.zone_left if watering else float(self.durations[self.current])
        total += left_here + _soaks(left_here, self.chunk_left, chunk, soak)
        for zone in self.zones[self.position + 1 :]:
            total += self.between + self.durations[zone]
            total += _soaks(self.durations[zone], 0.0, chunk, soak)
        return total


def _soaks(left: float, chunk_left: float, chunk: int, soak: int) -> float:
    if chunk <= 0 or soak <= 0 or left <= 0:
        return 0.0
    first = chunk_left if chunk_left > 0 else chunk
    if left <= first:
        return 0.0
    return math.ceil((left - first) / chunk) * soak


def _as_int(value: float) -> int:
    return round(value)


class Controller:
    """One controller's whole state; every method that takes ``now`` first catches up to it."""

    def __init__(self, deviceid: str, *, now: float, connectedvalves: int = MAX_ZONES) -> None:
        self.deviceid = deviceid
        self.zones = [Zone(index=i + 1) for i in range(MAX_ZONES)]
        self.settings: dict[str, Any] = {
            "devicetimezone": 0,
            "connectedvalves": connectedvalves,
            "temperature": 0,
            "adjusttemperature": 0,
            "temperaturemode": 0,
            "sleeptemperature": 0,
            "enabletimermode": 1,
            "didialarm": 0,
            "timernum": 0,
            "soundalarm": 1,
            "autoadjusttime": 1,
            "devicename": f"Aifro-WE-{deviceid[-4:]}",
            "serverhostname": "",
            "serverport": 0,
            "authority": 0,
            "authorityname": "",
            "rainpause": 1,
            "rainpausetime": 0,
            "country": "",
            "city": "",
            "zipcode": 0,
            "maxadjustvalue": 50,
            "firewareversion": 100,
            "protocolversion": 143,
            "backlightstatus": 1,
            "usedwaterzerodate": 0,
            "gallonperminute": 0,
            "pricepergallon": 0,
            "enablecloudmode": 1,
            "everywatersecond": 0,
            "needstopsecond": 0,
            "restrictiontime": {"starthour": 0, "startminute": 0, "endhour": 0, "endminute": 0},
        }
        self.programs: list[Program] = program_slots([])
        self.weather = Weather()
        self.time_offset = 0.0  # device clock minus true time, set by "devicetime"
        self.delay_until: float | None = None  # "delaytime": None none, inf paused
        # Programs are skipped when this much rain (mm, next 24 h) is forecast; 0 = never.
        self.rain_skip_mm = 0.0
        self.rain_wait_until = 0.0
        self.usedwater = 0.0  # gallons
        self.password: str | None = None
        self.run: Run | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LENGTH)
        self.last_tick = now
        self._was_raining = False
        self._logged = 0  # history entries ever logged (numbers them for reporting)

    # -- time -------------------------------------------------------------------------

    def local(self, now: float) -> datetime:
        offset = self.settings["devicetimezone"] * 3600 + self.time_offset
        return datetime.fromtimestamp(now + offset, UTC)

    def tick(self, now: float) -> None:
        """Advance to ``now``: watering progress, program starts, rain and daily resets."""
        if now <= self.last_tick:
            return
        # A controller that was off for days does not replay them: catch up at most 2 days.
        t = max(self.last_tick, now - 2 * DAY)
        while t < now:
            # Minutes turn on the device's clock (set by "devicetime"), not on true time:
            # a program set for 10:00 starts when the device shows 10:00:00.
            device_t = t + self.time_offset
            boundary = (math.floor((device_t + 1e-9) / 60) + 1) * 60 - self.time_offset
            step_end = min(now, boundary)
            self._advance(t, step_end)
            t = step_end
            if t >= boundary - 1e-6:
                self._on_minute(t)
        self.last_tick = now

    def _blocked_for(self, run: Run | None, now: float) -> str | None:
        """Why ``run`` may not water at ``now``. A manual run (index 0) goes through the
        waiting after rain and the owner's own watering delay, as OpenSprinkler lets manual
        runs through its rain delay; rain itself, sleep temperature and the restriction
        window stop it too."""
        reason = self._blocked(now)
        if run is not None and run.index == 0 and reason in MANUAL_OVERRIDES:
            return None
        return reason

    def _blocked(self, now: float) -> str | None:
        """Why nothing may water at ``now``, or None."""
        if self.raining:
            return "rain"
        if now < self.rain_wait_until:
            return "rain delay"
        if self.delay_until is not None and now < self.delay_until:
            return "watering delayed"
        if self.settings["temperature"] < self.settings["sleeptemperature"]:
            return "sleep temperature"
        if self._restricted(now):
            return "restriction time"
        return None

    @property
    def raining(self) -> bool:
        return bool(self.settings["rainpause"]) and self.weather.code in RAIN_CODES

    def _restricted(self, now: float) -> bool:
        window = self.settings["restrictiontime"]
        start = int(window["starthour"]) * 60 + int(window["startminute"])
        end = int(window["endhour"]) * 60 + int(window["endminute"])
        if start == end:
            return False
        local = self.local(now)
        minute = local.hour * 60 + local.minute
        if start < end:
            return start <= minute < end
        return minute >= start or minute < end

    def _advance(self, start: float, end: float) -> None:
        """Progress the running task from ``start`` to ``end`` unless watering is blocked."""
        if self.delay_until is not None and end >= self.delay_until:
            self.delay_until = None
        if self.run is None:
            return
        reason = self._blocked_for(self.run, start)
        if reason is not None:
            # Never a zone shown watering while nothing waters: the task ends, with its reason.
            self._abort(start, reason)
            return
        t = start
        while self.run is not None and t < end:
            t += self._step(self.run, end - t, t)

    def _step(self, run: Run, available: float, t: float) -> float:
        """Spend up to ``available`` seconds in the current phase; returns what was used."""
        zone = self.zones[run.current - 1]
        if run.phase in ("delay", "soak", "between"):
            used = min(available, run.phase_left)
            run.phase_left -= used
            zone.delaytime = run.phase_left
            if run.phase_left <= 1e-9:
                zone.delaytime = 0.0
                if run.phase == "soak":
                    self._water(run, zone, resume=True)
                else:
                    self._begin_zone(run, t + used)
            return max(used, 1e-9) if used == 0 else used
        # watering
        used = min(available, run.zone_left, run.chunk_left if run.chunk_left > 0 else math.inf)
        run.zone_left -= used
        if run.chunk_left > 0:
            run.chunk_left -= used
        zone.wateredtime += used
        zone.totalwateredtime += used
        self.usedwater += self.settings["gallonperminute"] / 100 * used / 60
        now = t + used
        if run.zone_left <= 1e-9:
            self._finish_zone(run, zone, now)
        elif run.chunk_left <= 1e-9 and self.settings["needstopsecond"] > 0:
            run.phase = "soak"
            run.phase_left = float(self.settings["needstopsecond"])
            zone.status = ZONE_DELAYING
            zone.delaytime = run.phase_left
        elif run.chunk_left <= 1e-9:
            run.chunk_left = float(self.settings["everywatersecond"])
        return max(used, 1e-9)

    def _cycle_length(self, zone: Zone) -> int:
        if zone.cycleandsoak and self.settings["everywatersecond"] > 0:
            return int(self.settings["everywatersecond"])
        return 0

    def _water(self, run: Run, zone: Zone, *, resume: bool) -> None:
        run.phase = "water"
        run.phase_left = 0.0
        zone.status = ZONE_WATERING
        zone.delaytime = 0.0
        chunk = self._cycle_length(zone)
        run.chunk_left = float(min(chunk, run.zone_left)) if chunk else 0.0
        if not resume:
            zone.wateredtime = 0.0

    def _begin_zone(self, run: Run, now: float) -> None:
        zone = self.zones[run.current - 1]
        run.zone_left = float(run.durations[run.current])
        self._water(run, zone, resume=False)
        self._log(now, "zone started", zone=zone.index, index=run.index)

    def _finish_zone(self, run: Run, zone: Zone, now: float) -> None:
        zone.status = ZONE_WATERED
        zone.lastwaterdate = int(now)
        zone.delaytime = 0.0
        self._log(now, "zone watered", zone=zone.index, seconds=_as_int(zone.wateredtime))
        run.position += 1
        if run.position >= len(run.zones):
            self._log(now, "task finished", index=run.index)
            self.run = None
            return
        if run.between > 0:
            run.phase = "between"
            run.phase_left = float(run.between)
            nxt = self.zones[run.current - 1]
            nxt.status = ZONE_DELAYING
            nxt.delaytime = run.phase_left
        else:
            self._begin_zone(run, now)

    def _on_minute(self, t: float) -> None:
        """Once a minute: rain transitions, midnight reset, program starts."""
        t = self._exact_minute(t)
        raining = self.raining
        if raining and self.run is not None:
            self._abort(t, "rain")
        if self._was_raining and not raining:
            self.rain_wait_until = t + self.settings["rainpausetime"] * 3600
        self._was_raining = raining
        local = self.local(t)
        if local.hour == 0 and local.minute == 0:
            for zone in self.zones:
                zone.totalwateredtime = 0.0
                if zone.status == ZONE_WATERED:
                    zone.status = ZONE_NOT_WATERED
        if not self.settings["enabletimermode"]:
            return
        for number, program in enumerate(self.programs, start=1):
            if program.enabled and program.tasklist and self._due(program, t):
                self._start_program(number, program, t)

    def _exact_minute(self, t: float) -> float:
        """``t`` moved onto the device-clock minute it ends (float rounding aside)."""
        device_t = round((t + self.time_offset) / 60) * 60
        return device_t - self.time_offset

    def _due(self, program: Program, t: float) -> bool:
        if program.time:
            device_t = t + self.time_offset  # "time" is read on the device's clock too
            if device_t < program.time - 1e-6:
                return False
            elapsed = round(device_t - program.time)
            if program.interval == 0:
                return elapsed < 60
            return elapsed % (program.interval * DAY) < 60
        local = self.local(t)
        if not program.week & (1 << local.weekday()):
            return False
        return local.hour == program.hour and local.minute == program.minute

    def _start_program(self, number: int, program: Program, t: float) -> None:
        reason = self._blocked(t)
        if reason is None and self.run is not None:
            reason = "another task is running"
        skip_mm = self.rain_skip_mm
        if reason is None and skip_mm > 0 and self.weather.rainforecast >= skip_mm:
            reason = "rain forecast"
        if reason is not None:
            self._log(t, "program skipped", index=number, reason=reason)
            return
        self._begin_run(
            number,
            program.tasklist,
            between=program.delay * 60,
            delay=0,
            now=t,
            minutes=program.duration,
        )

    def _begin_run(
        self,
        index: int,
        zones: list[int],
        *,
        between: int,
        delay: int,
        now: float,
        minutes: int = 0,
    ) -> bool:
        durations = {}
        for number in zones:
            zone = self.zones[number - 1]
            seconds = self.effective_watertime(zone, base=minutes * 60 if minutes else None)
            if number > self.settings["connectedvalves"] or not zone.enabled or seconds <= 0:
                self._log(now, "zone skipped", zone=number, index=index)
                continue
            durations[number] = seconds
        if not durations:
            return False
        self.run = Run(index=index, zones=list(durations), durations=durations, between=between)
        self._log(now, "task started", index=index, zones=list(durations))
        if delay > 0:
            self.run.phase = "delay"
            self.run.phase_left = float(delay)
            first = self.zones[self.run.current - 1]
            first.status = ZONE_DELAYING
            first.delaytime = float(delay)
        else:
            self._begin_zone(self.run, now)
        return True

    def _abort(self, now: float, reason: str) -> None:
        run = self.run
        if run is None:
            return
        for number in run.zones[run.position :]:
            zone = self.zones[number - 1]
            if zone.status in (ZONE_WATERING, ZONE_DELAYING):
                zone.status = ZONE_WATERED if zone.wateredtime > 0 else ZONE_NOT_WATERED
                if zone.wateredtime > 0:
                    zone.lastwaterdate = int(now)
            zone.delaytime = 0.0
        self.run = None
        self._log(now, "task stopped", index=run.index, reason=reason)

    def _log(self, now: float, event: str, **details: Any) -> None:
        self._logged += 1
        self.history.append({"time": int(now), "event": event, **details, "_n": self._logged})

    # -- derived values ---------------------------------------------------------------

    def aiadjusttime(self, zone: Zone, base: int | None = None) -> int:
        """ "Adjustment of each zone = maxadjustvalue * aiadjustwater * watertime" (percents)."""
        if not zone.aiwater:
            return 0
        seconds = zone.watertime if base is None else base
        product = self.settings["maxadjustvalue"] * self.weather.aiadjustwater * seconds
        return int(product / 10_000)

    def effective_watertime(self, zone: Zone, base: int | None = None) -> int:
        seconds = zone.watertime if base is None else base
        return max(0, seconds + self.aiadjusttime(zone, base))

    def devicestatus(self, now: float) -> int:
        if self.raining:
            return RAINING
        if now < self.rain_wait_until:
            return AFTER_RAIN
        if self.settings["temperature"] < self.settings["sleeptemperature"]:
            return COLD
        return WATERING if self.run is not None else IDLE

    @property
    def water_cost_dollars(self) -> float:
        return round(self.usedwater * float(self.settings["pricepergallon"]) / 100, 2)

    # -- commands ---------------------------------------------------------------------

    def command(
        self, op: str, args: dict[str, Any], *, now: float, deadline: float | None = None
    ) -> int:
        """Apply a link command; returns an Appendix 2 code (0 success).

        ``deadline`` (the command's ``until``, on the device clock): past it, the server has
        already told the app 120 ("the action expired"), so the command is refused with 120
        and nothing happens."""
        self.tick(now)
        if deadline is not None and now + self.time_offset > deadline:
            self._log(now, "command expired", op=op)
            return NO_ACK
        try:
            if op == OP_START:
                self.start(args, now=now)
            elif op == OP_STOP:
                self.stop(now=now)
            elif op == OP_SETUP:
                self.setup(args.get("setup"), now=now)
            elif op == OP_VALVES_SETUP:
                self.valves_setup(args, now=now)
            elif op == OP_WEATHER:
                self.weather_report(args, now=now)
            else:
                return 108
        except AifroError as exc:
            return exc.code
        return 0

    def start(self, args: Any, *, now: float) -> None:
        body = validate_start(args)
        if self.run is not None:
            raise AifroError(TASK_RUNNING)
        if any(z > self.settings["connectedvalves"] for z in body["tasklist"]):
            raise AifroError(INVALID_PARAMS)
        # Refused, not queued: the app must never be told "started" while nothing waters.
        probe = Run(index=0, zones=[], durations={}, between=0)
        reason = self._blocked_for(probe, now)
        if reason is not None:
            self._log(now, "start refused", reason=reason)
            raise AifroError(INVALID_OPERATION)
        if not self._begin_run(
            0,
            body["tasklist"],
            between=0,
            delay=body["delaytime"],
            now=now,
            minutes=body.get("duration", 0),
        ):
            raise AifroError(INVALID_PARAMS)

    def stop(self, *, now: float) -> None:
        self._abort(now, "stopped by user")

    def valves_setup(self, args: Any, *, now: float) -> None:
        body = validate_valves_setup(args)
        index = body.pop("valvesindex")
        if index > self.settings["connectedvalves"]:
            raise AifroError(INVALID_SETUP)
        zone = self.zones[index - 1]
        for name, value in body.items():
            setattr(zone, name, value)

    def setup(self, raw: Any, *, now: float) -> None:
        setup = validate_setup(raw)
        if "timerdata" in setup:
            programs = [Program(**p) for p in setup["timerdata"]]
            if programs_collide(programs, self, now=now):
                raise AifroError(PROGRAM_COLLISION)
        for name, value in setup.items():
            self._apply(name, value, now=now, setup=setup)
        # A setting that now forbids watering (sleep temperature, restriction window, delay)
        # ends a running task at once rather than leaving it shown as watering.
        self._advance(now, now)

    def _apply(self, name: str, value: Any, *, now: float, setup: dict[str, Any]) -> None:
        if name == "devicetime":
            self.time_offset = value - now
        elif name == "timerdata":
            self.programs = program_slots([Program(**p) for p in value])
            if "timernum" not in setup:
                self.settings["timernum"] = sum(1 for p in self.programs if p.configured)
        elif name == "devicepasswd":
            if value:
                self.password = value
        elif name == "delaytime":
            self.delay_until = None if value == 0 else (math.inf if value < 0 else now + value)
        elif name == "zerousedwater":
            if value:
                self.usedwater = 0.0
                self.settings["usedwaterzerodate"] = int(now)
        elif name in (
            "weather",
            "weathertemperature",
            "weatherwindpower",
            "weatherhumidity",
            "aiadjustwater",
        ):
            attribute = {
                "weather": "code",
                "weathertemperature": "temperature",
                "weatherwindpower": "windpower",
                "weatherhumidity": "humidity",
                "aiadjustwater": "aiadjustwater",
            }[name]
            setattr(self.weather, attribute, value)
        else:
            self.settings[name] = value

    def weather_report(self, args: Any, *, now: float) -> None:
        """The server's weather feed (link op ``weather``): Appendix 1's mask-128 fields, the
        24 h rain forecast and the skip threshold."""
        if not isinstance(args, dict):
            raise AifroError(INVALID_PARAMS)
        fields = validate_setup(
            {k: args[k] for k in WEATHER_FIELDS if k in args}
        )  # the same ranges the app's 00204 obeys
        forecast, skip = args.get("rainforecast", 0.0), args.get("rainskipmm", 0.0)
        if not all(isinstance(v, int | float) and 0 <= v < 10_000 for v in (forecast, skip)):
            raise AifroError(INVALID_PARAMS)
        weather = Weather(
            code=fields.get("weather", self.weather.code),
            temperature=fields.get("weathertemperature", self.weather.temperature),
            windpower=fields.get("weatherwindpower", self.weather.windpower),
            humidity=fields.get("weatherhumidity", self.weather.humidity),
            aiadjustwater=fields.get("aiadjustwater", self.weather.aiadjustwater),
            rainforecast=float(forecast),
        )
        self.rain_skip_mm = float(skip)
        self.apply_weather(weather, now=now)

    def apply_weather(self, weather: Weather, *, now: float, sensor: bool = False) -> None:
        """A weather report; without a temperature sensor the device shows the weather's."""
        self.tick(now)
        self.weather = weather
        if not sensor:
            self.settings["temperature"] = weather.temperature * 1000
        if self.raining:
            self._abort(now, "rain")  # stop at once, not at the next minute

    # -- status -----------------------------------------------------------------------

    def status(self, now: float) -> dict[str, Any]:
        """Every status field (inquiry mask 0xFFFFFFFF) in wire spelling."""
        self.tick(now)
        run = self.run
        chunk, soak = int(self.settings["everywatersecond"]), int(self.settings["needstopsecond"])
        remaining = _as_int(run.remaining(chunk, soak)) if run is not None else 0
        s = self.settings
        connected = s["connectedvalves"]
        delay_left = 0
        if self.delay_until is not None:
            delay_left = -1 if self.delay_until == math.inf else _as_int(self.delay_until - now)
        return {
            "devicestatus": self.devicestatus(now),
            "rainwaittime": max(0, _as_int(self.rain_wait_until - now)),
            "runtasklist": list(run.zones[run.position :]) if run is not None else [],
            "runtaskindex": run.index if run is not None else 0,
            # Cloudlet's link extensions (never in an app answer: select_status copies only
            # Appendix 1 fields): the running task's own plan, which a start's or a
            # program's duration makes differ from the zones' watertime.
            RUN_TASK_LEFT: remaining,
            RUN_ZONE_LEFT: _as_int(run.zone_left)
            if run is not None and run.phase in ("water", "soak")
            else 0,
            "devicetimezone": s["devicetimezone"],
            "devicetime": int(now + self.time_offset),
            "connectedvalves": connected,
            "valvesstatus": [self._zone_wire(z) for z in self.zones[:connected]],
            "temperature": s["temperature"],
            "adjusttemperature": s["adjusttemperature"],
            "temperaturemode": s["temperaturemode"],
            "sleeptemperature": s["sleeptemperature"],
            "enabletimermode": s["enabletimermode"],
            "didialarm": s["didialarm"],
            "timernum": s["timernum"],
            "timerdata": [
                p.to_wire(running=run is not None and run.index == i, remaining=remaining)
                for i, p in enumerate(self.programs, start=1)
            ],
            "weather": self.weather.code,
            "weathertemperature": self.weather.temperature,
            "weatherwindpower": self.weather.windpower,
            "weatherhumidity": self.weather.humidity,
            "aiadjustwater": self.weather.aiadjustwater,
            "soundalarm": s["soundalarm"],
            "autoadjusttime": s["autoadjusttime"],
            "devicename": s["devicename"],
            "devicepasswd": "",
            "serverhostname": s["serverhostname"],
            "serverport": s["serverport"],
            "authority": s["authority"],
            "authorityname": s["authorityname"],
            "rainpause": s["rainpause"],
            "rainpausetime": s["rainpausetime"],
            "delaytime": delay_left,
            "country": s["country"],
            "city": s["city"],
            "zipcode": s["zipcode"],
            "maxadjustvalue": s["maxadjustvalue"],
            "firewareversion": s["firewareversion"],
            "protocolversion": s["protocolversion"],
            "backlightstatus": s["backlightstatus"],
            "usedwater": _as_int(self.usedwater),
            "usedwaterzerodate": s["usedwaterzerodate"],
            "gallonperminute": s["gallonperminute"],
            "pricepergallon": s["pricepergallon"],
            "enablecloudmode": s["enablecloudmode"],
            "everywatersecond": s["everywatersecond"],
            "needstopsecond": s["needstopsecond"],
            "restrictiontime": dict(s["restrictiontime"]),
        }

    def _zone_wire(self, zone: Zone) -> dict[str, Any]:
        return {
            "enabled": zone.enabled,
            "valvesswitch": 0,
            "valvesname": zone.valvesname,
            "valvesicon": zone.valvesicon,
            "valvesiconfile": zone.valvesiconfile,
            "watertime": zone.watertime,
            "wateredtime": _as_int(zone.wateredtime),
            "totalwateredtime": _as_int(zone.totalwateredtime),
            "aiadjusttime": self.aiadjusttime(zone),
            "aiwater": zone.aiwater,
            "status": zone.status,
            "delaytime": _as_int(zone.delaytime),
            "planttype": zone.planttype,
            "soiltype": zone.soiltype,
            "cycleandsoak": zone.cycleandsoak,
            "lastwaterdate": zone.lastwaterdate,
        }

    def load(self, status: dict[str, Any], *, now: float) -> None:
        """Take over a status snapshot (a device restored from a backup, or test fixtures)."""
        status = copy.deepcopy(status)
        for name in self.settings:
            if name in status:
                self.settings[name] = status[name]
        self.settings["connectedvalves"] = status.get("connectedvalves", MAX_ZONES)
        for raw, zone in zip(status.get("valvesstatus", []), self.zones, strict=False):
            for name in (
                "enabled",
                "valvesname",
                "valvesicon",
                "valvesiconfile",
                "watertime",
                "wateredtime",
                "totalwateredtime",
                "aiwater",
                "status",
                "lastwaterdate",
                "planttype",
                "soiltype",
                "cycleandsoak",
            ):
                if name in raw:
                    setattr(zone, name, raw[name])
        self.programs = program_slots(
            [
                Program(
                    **{k: v for k, v in p.items() if k in Program.__dataclass_fields__}
                    | {"addedflag": p.get("addedflag", 1 if p.get("tasklist") else 0)}
                )
                for p in status.get("timerdata", [])
            ]
        )
        self.weather = Weather(
            code=status.get("weather", self.weather.code),
            temperature=status.get("weathertemperature", self.weather.temperature),
            windpower=status.get("weatherwindpower", self.weather.windpower),
            humidity=status.get("weatherhumidity", self.weather.humidity),
            aiadjustwater=status.get("aiadjustwater", self.weather.aiadjustwater),
        )
        self.usedwater = float(status.get("usedwater", self.usedwater))
        if "devicetime" in status:
            self.time_offset = status["devicetime"] - now
        self.last_tick = now


def _program_days(program: Program, controller: Controller, start: float, days: int) -> list[float]:
    """Start instants of ``program`` within ``days`` days from ``start``."""
    starts: list[float] = []
    if program.time:
        if program.interval == 0:
            return [float(program.time)] if program.time < start + days * DAY else []
        step = program.interval * DAY
        first = program.time
        if first < start:
            first += math.ceil((start - first) / step) * step
        t = float(first)
        while t < start + days * DAY:
            starts.append(t)
            t += step
        return starts
    local_start = controller.local(start)
    midnight = start - (local_start.hour * 3600 + local_start.minute * 60 + local_start.second)
    for day in range(days):
        t = midnight + day * DAY + program.hour * 3600 + program.minute * 60
        if program.week & (1 << controller.local(t).weekday()):
            starts.append(t)
    return starts


def programs_collide(programs: list[Program], controller: Controller, *, now: float) -> bool:
    """True when two enabled programs would water at the same time (checked over 4 weeks)."""
    windows: list[tuple[float, float]] = []
    for program in programs:
        if not program.enabled or not program.tasklist:
            continue
        length = sum(
            controller.effective_watertime(controller.zones[z - 1]) for z in program.tasklist
        ) + program.delay * 60 * max(0, len(program.tasklist) - 1)
        length = max(length, 60)
        own = [(t, t + length) for t in _program_days(program, controller, now, 28)]
        for start, end in own:
            for other_start, other_end in windows:
                if start < other_end and other_start < end:
                    return True
        windows.extend(own)
    return False
