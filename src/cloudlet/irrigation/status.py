"""What a controller's last report means to an owner: status names, what runs, time left.

Pure functions of the stored report (Appendix 1 fields) and the seconds since it arrived,
shared by the dashboard and the Home Assistant entities.
"""

from __future__ import annotations

from typing import Any

# Appendix 1 values of devicestatus and of a zone's status.
DEVICE_STATUS = {
    0: "watering",
    1: "idle",
    2: "raining (watering paused)",
    3: "waiting after rain",
    4: "too cold (sleeping)",
}
ZONE_STATUS = {0: "not watered today", 1: "watering", 2: "watered", 3: "delaying / soaking"}
ZONE_WATERING, ZONE_WATERED, ZONE_DELAYING = 1, 2, 3
PROGRAM_SLOTS = 8
NO_TASK, MANUAL_TASK = "none", "manual"
# Link extensions a Cloudlet controller reports (irrigation.runtime).
RUN_TASK_LEFT, RUN_ZONE_LEFT = "runtaskleft", "runzoneleft"


def as_int(value: Any, default: int = 0) -> int:
    """An integer field of a report (booleans and other types are not integers here)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def zones(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The connected zones' reports, zone 1 first."""
    raw = state.get("valvesstatus")
    connected = as_int(state.get("connectedvalves"), len(raw) if isinstance(raw, list) else 0)
    if not isinstance(raw, list):
        return []
    return [zone if isinstance(zone, dict) else {} for zone in raw[:connected]]


def planned_seconds(zone: dict[str, Any]) -> int:
    """A zone's run time, with its AI adjustment when that is on."""
    extra = as_int(zone.get("aiadjusttime")) if zone.get("aiwater") else 0
    return max(0, as_int(zone.get("watertime")) + extra)


def zone_remaining(
    zone: dict[str, Any], *, elapsed: float, state: dict[str, Any] | None = None
) -> int | None:
    """Seconds left of a watering zone, or of its delay/soak; None when it is not running.

    The controller's own figure for the zone it waters (``runzoneleft``, a link extension:
    a start's or program's duration overrides ``watertime``) when the report has one."""
    status = as_int(zone.get("status"))
    if status == ZONE_WATERING:
        own = (state or {}).get(RUN_ZONE_LEFT)
        if isinstance(own, int) and not isinstance(own, bool) and own > 0:
            return max(0, int(own - elapsed))
        return max(0, int(planned_seconds(zone) - as_int(zone.get("wateredtime")) - elapsed))
    if status == ZONE_DELAYING:
        return max(0, int(as_int(zone.get("delaytime")) - elapsed))
    return None


def running_task(state: dict[str, Any]) -> str:
    """``none``, ``manual`` or ``program N`` (runtaskindex 1-8)."""
    if not state.get("runtasklist"):
        return NO_TASK
    index = as_int(state.get("runtaskindex"))
    return f"program {index}" if 1 <= index <= PROGRAM_SLOTS else MANUAL_TASK


def task_remaining(state: dict[str, Any], *, elapsed: float) -> int:
    """Seconds until the running task ends, 0 when none runs.

    The controller's own figure (``runtaskleft``, a link extension) when the report has one;
    else a program's ``lasttime`` (it counts soaks and the delays between zones); otherwise
    the task's zones: the time left of the running one and the planned time of those still
    to come (a manual task's delays between zones are not reported, so not counted).
    """
    task = running_task(state)
    if task == NO_TASK:
        return 0
    own = state.get(RUN_TASK_LEFT)
    if isinstance(own, int) and not isinstance(own, bool) and own > 0:
        return max(0, int(own - elapsed))
    if task != MANUAL_TASK:
        programs = state.get("timerdata")
        index = as_int(state.get("runtaskindex")) - 1
        if isinstance(programs, list) and index < len(programs):
            program = programs[index]
            if isinstance(program, dict) and as_int(program.get("lasttime")) > 0:
                return max(0, int(as_int(program.get("lasttime")) - elapsed))
    reported = zones(state)
    left = 0
    for number in state.get("runtasklist") or []:
        if not isinstance(number, int) or not 0 < number <= len(reported):
            continue
        zone = reported[number - 1]
        status = as_int(zone.get("status"))
        if status == ZONE_WATERING:
            left += zone_remaining(zone, elapsed=elapsed, state=state) or 0
        elif status == ZONE_DELAYING:
            left += (zone_remaining(zone, elapsed=elapsed) or 0) + planned_seconds(zone)
        elif status != ZONE_WATERED:
            left += planned_seconds(zone)
    return left
