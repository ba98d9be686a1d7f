"""The controller runtime, driven by moving time with ``tick(now)`` (no sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cloudlet.irrigation.runtime import Controller, Weather

# Monday 2026-11-23 00:00 UTC.
MONDAY = datetime(2026, 11, 23, tzinfo=UTC).timestamp()


def make(**settings: Any) -> Controller:
    controller = Controller("11010F60BA50CF0D", now=MONDAY, connectedvalves=8)
    if settings:
        assert controller.command("setup", {"setup": settings}, now=MONDAY) == 0
    return controller


def zone(controller: Controller, index: int, now: float) -> dict[str, Any]:
    zones: list[dict[str, Any]] = controller.status(now)["valvesstatus"]
    return zones[index - 1]


def program(**fields: Any) -> dict[str, Any]:
    return {"enabled": 1, "delay": 0, "tasklist": [1, 2], "name": "P"} | fields


def test_week_program_runs_zones_in_turn_with_delay_between() -> None:
    # Monday (bit 0) 06:30 local, device in UTC+2 -> 04:30 UTC; 1 minute between zones.
    c = make(devicetimezone=2, timerdata=[program(week=0x01, hour=6, minute=30, delay=1)])
    for z in (1, 2):
        assert c.command("valvessetup", {"valvesindex": z, "watertime": 120}, now=MONDAY) == 0
    start = MONDAY + 4.5 * 3600
    status = c.status(start - 1)
    assert status["devicestatus"] == 1
    status = c.status(start + 30)
    assert (status["devicestatus"], status["runtaskindex"], status["runtasklist"]) == (0, 1, [1, 2])
    assert status["timerdata"][0]["status"] == 1
    assert status["timerdata"][0]["lasttime"] == 90 + 60 + 120
    assert zone(c, 1, start + 30)["wateredtime"] == 30
    # Zone 1 done at +120, then 60 s delay (zone 2 "delaying"), zone 2 from +180.
    z2 = zone(c, 2, start + 150)
    assert (z2["status"], z2["delaytime"]) == (3, 30)
    assert zone(c, 1, start + 150)["status"] == 2
    assert zone(c, 2, start + 200)["status"] == 1
    status = c.status(start + 300)
    assert (status["devicestatus"], status["runtasklist"]) == (1, [])
    assert zone(c, 2, start + 300)["totalwateredtime"] == 120
    assert zone(c, 2, start + 300)["lastwaterdate"] == int(start + 300)
    # Not on Tuesday.
    assert c.status(start + 86400 + 30)["devicestatus"] == 1


def test_time_and_interval_program_repeats_every_n_days() -> None:
    first = MONDAY + 3600
    c = make(timerdata=[program(time=int(first), interval=2, tasklist=[3])])
    assert c.status(first + 10)["runtasklist"] == [3]
    assert c.status(first + 86400 + 10)["runtasklist"] == []
    assert c.status(first + 2 * 86400 + 10)["runtasklist"] == [3]


def test_cycle_and_soak_splits_watering() -> None:
    c = make(everywatersecond=120, needstopsecond=60)
    assert (
        c.command(
            "valvessetup", {"valvesindex": 1, "watertime": 300, "cycleandsoak": 1}, now=MONDAY
        )
        == 0
    )
    assert c.command("start", {"delaytime": 0, "tasklist": [1]}, now=MONDAY) == 0
    assert (zone(c, 1, MONDAY + 100)["status"], zone(c, 1, MONDAY + 100)["wateredtime"]) == (1, 100)
    soaking = zone(c, 1, MONDAY + 150)
    assert (soaking["status"], soaking["delaytime"], soaking["wateredtime"]) == (3, 30, 120)
    assert zone(c, 1, MONDAY + 200)["wateredtime"] == 140
    assert c.status(MONDAY + 419)["runtasklist"] == [1]
    assert c.status(MONDAY + 421)["runtasklist"] == []
    assert zone(c, 1, MONDAY + 421)["totalwateredtime"] == 300


def test_manual_start_with_delay_then_running_task_refused() -> None:
    c = make()
    assert c.command("start", {"delaytime": 200, "tasklist": [1, 5]}, now=MONDAY) == 0
    first = zone(c, 1, MONDAY + 50)
    assert (first["status"], first["delaytime"]) == (3, 150)
    assert c.command("start", {"delaytime": 0, "tasklist": [2]}, now=MONDAY + 60) == 143
    assert zone(c, 1, MONDAY + 260)["wateredtime"] == 60
    assert c.command("stop", {}, now=MONDAY + 260) == 0
    assert c.status(MONDAY + 260)["devicestatus"] == 1
    assert zone(c, 1, MONDAY + 260)["status"] == 2


def test_start_validation_codes() -> None:
    c = make(connectedvalves=4)
    assert c.command("start", {"tasklist": [5]}, now=MONDAY) == 110
    assert c.command("start", {"tasklist": []}, now=MONDAY) == 110
    assert c.command("valvessetup", {"valvesindex": 5}, now=MONDAY) == 109
    assert c.command("reboot", {}, now=MONDAY) == 108


def test_rain_stops_watering_then_waits_rain_pause_hours() -> None:
    c = make(rainpause=1, rainpausetime=2, timerdata=[program(week=0x7F, hour=2, minute=0)])
    assert c.command("start", {"tasklist": [1]}, now=MONDAY) == 0
    c.apply_weather(Weather(code=11, temperature=15), now=MONDAY + 30)  # showers
    status = c.status(MONDAY + 90)
    assert (status["devicestatus"], status["runtasklist"]) == (2, [])
    c.apply_weather(Weather(code=26, temperature=15), now=MONDAY + 3600)  # cloudy
    status = c.status(MONDAY + 3600 + 60)
    assert status["devicestatus"] == 3
    assert 0 < status["rainwaittime"] <= 2 * 3600
    # 02:00 falls inside the 2 hour wait: the program is skipped, with the reason kept.
    assert c.status(MONDAY + 2 * 3600 + 30)["runtasklist"] == []
    assert any(h["event"] == "program skipped" and h["reason"] == "rain delay" for h in c.history)
    assert c.status(MONDAY + 3 * 3600 + 120)["devicestatus"] == 1


def test_sleep_temperature_blocks_programs() -> None:
    c = make(sleeptemperature=2000, timerdata=[program(week=0x7F, hour=1, minute=0)])
    c.apply_weather(Weather(code=31, temperature=1), now=MONDAY)
    status = c.status(MONDAY + 3600 + 30)
    assert (status["devicestatus"], status["runtasklist"]) == (4, [])
    assert c.history[-1]["reason"] == "sleep temperature"


def test_restriction_window_skips_programs() -> None:
    window = {"starthour": 22, "startminute": 0, "endhour": 6, "endminute": 0}
    c = make(
        restrictiontime=window,
        timerdata=[program(week=0x7F, hour=5, minute=0), program(week=0x7F, hour=7, minute=0)],
    )
    assert c.status(MONDAY + 5 * 3600 + 30)["runtasklist"] == []
    assert c.history[-1]["reason"] == "restriction time"
    assert c.status(MONDAY + 7 * 3600 + 30)["runtaskindex"] == 2


def test_delaytime_pause_and_countdown() -> None:
    c = make(delaytime=-1, timerdata=[program(week=0x7F, hour=1, minute=0)])
    status = c.status(MONDAY + 3600 + 30)
    assert (status["delaytime"], status["runtasklist"]) == (-1, [])
    assert c.command("setup", {"setup": {"delaytime": 600}}, now=MONDAY + 3600 + 60) == 0
    assert c.status(MONDAY + 3600 + 160)["delaytime"] == 500
    assert c.status(MONDAY + 7200)["delaytime"] == 0


def test_water_used_and_cost() -> None:
    c = make(gallonperminute=1000, pricepergallon=5)  # 10 gal/min, $0.05/gal
    assert c.command("start", {"tasklist": [1]}, now=MONDAY) == 0  # 300 s
    status = c.status(MONDAY + 400)
    assert status["usedwater"] == 50
    assert c.water_cost_dollars == 2.5
    assert c.command("setup", {"setup": {"zerousedwater": 1}}, now=MONDAY + 400) == 0
    status = c.status(MONDAY + 400)
    assert (status["usedwater"], status["usedwaterzerodate"]) == (0, int(MONDAY + 400))


def test_ai_adjustment_from_weather() -> None:
    c = make(maxadjustvalue=50)
    assert c.command("valvessetup", {"valvesindex": 1, "aiwater": 1}, now=MONDAY) == 0
    c.apply_weather(Weather(code=28, temperature=26, aiadjustwater=-52), now=MONDAY)
    assert zone(c, 1, MONDAY)["aiadjusttime"] == -78  # the vendor example's figure
    assert c.effective_watertime(c.zones[0]) == 222


def test_program_collision_is_refused() -> None:
    c = make()
    colliding = [program(week=0x01, hour=6, minute=0), program(week=0x41, hour=6, minute=5)]
    assert c.command("setup", {"setup": {"timerdata": colliding}}, now=MONDAY) == 144
    apart = [program(week=0x01, hour=6, minute=0), program(week=0x01, hour=7, minute=0)]
    assert c.command("setup", {"setup": {"timerdata": apart}}, now=MONDAY) == 0
    assert c.status(MONDAY)["timernum"] == 2


def test_midnight_clears_today_totals() -> None:
    c = make()
    assert c.command("start", {"tasklist": [1]}, now=MONDAY + 3600) == 0
    assert zone(c, 1, MONDAY + 3600 + 400)["totalwateredtime"] == 300
    after = zone(c, 1, MONDAY + 86400 + 60)
    assert (after["totalwateredtime"], after["status"]) == (0, 0)
