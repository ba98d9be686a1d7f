"""Irrigation page: controllers, zones, programs, history and water; start/stop a zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select

from cloudlet.core.services import Services, ServicesDep, SessionDep
from cloudlet.irrigation import service
from cloudlet.irrigation.api import EXTRA_KEY
from cloudlet.irrigation.errors import ERRORS, AifroError
from cloudlet.irrigation.link import IrrigationLink
from cloudlet.irrigation.models import IrrigationDevice, IrrigationEvent, IrrigationUser
from cloudlet.irrigation.protocol import OP_START, OP_STOP
from cloudlet.web.console import ConsoleUser, templates
from cloudlet.web.pages import render, require_family

FAMILY = "irrigation"
HISTORY_ROWS = 15
MAX_CONTROLLERS = 1000  # rows of the summary table
DETAIL_CARDS = 10  # controllers shown in full (online first) unless one is picked
MAX_ZONE = 52
DEVICE_ID_MAX = 32  # ids are 16 hex characters; a little slack for spaces
NOTE_MAX = 200

# Appendix 1 values of devicestatus and of a zone's status.
DEVICE_STATUS = {
    0: "watering",
    1: "idle",
    2: "raining (watering paused)",
    3: "waiting after rain",
    4: "too cold (sleeping)",
}
ZONE_STATUS = {0: "not watered today", 1: "watering", 2: "watered", 3: "delaying / soaking"}

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # week mask bit 0 is Monday

router = APIRouter()


def weekdays(mask: Any) -> str:
    """A program's ``week`` mask as day names ("never" for 0)."""
    days = [name for bit, name in enumerate(WEEKDAYS) if _as_int(mask) >> bit & 1]
    return "every day" if len(days) == len(WEEKDAYS) else " ".join(days) or "never"


templates.env.filters["weekdays"] = weekdays


@dataclass
class ZoneView:
    index: int
    name: str
    enabled: bool
    status: int
    status_text: str
    watertime: int
    wateredtime: int
    totalwateredtime: int
    remaining: int | None  # seconds, estimated from the last report; None when not running


@dataclass
class ControllerView:
    device: IrrigationDevice
    owner: str | None
    name: str
    status_text: str
    zones: list[ZoneView] = field(default_factory=list)
    programs: list[dict[str, Any]] = field(default_factory=list)
    used_gallons: int | None = None
    used_since: int | None = None
    cost_dollars: float | None = None
    history: list[IrrigationEvent] = field(default_factory=list)

    @property
    def watering_zones(self) -> list[int]:
        return [z.index for z in self.zones if z.status == 1]


def _as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _zones(state: dict[str, Any], *, elapsed: float) -> list[ZoneView]:
    zones: list[ZoneView] = []
    for index, raw in enumerate(state.get("valvesstatus") or [], start=1):
        if not isinstance(raw, dict):
            continue
        status = _as_int(raw.get("status"))
        watertime = _as_int(raw.get("watertime"))
        watered = _as_int(raw.get("wateredtime"))
        remaining: int | None = None
        if status == 1:
            planned = watertime + (_as_int(raw.get("aiadjusttime")) if raw.get("aiwater") else 0)
            remaining = max(0, int(planned - watered - elapsed))
        elif status == 3:
            remaining = max(0, int(_as_int(raw.get("delaytime")) - elapsed))
        zones.append(
            ZoneView(
                index=index,
                name=str(raw.get("valvesname") or f"Zone {index}"),
                enabled=bool(raw.get("enabled", 1)),
                status=status,
                status_text=ZONE_STATUS.get(status, f"status {status}"),
                watertime=watertime,
                wateredtime=watered,
                totalwateredtime=_as_int(raw.get("totalwateredtime")),
                remaining=remaining,
            )
        )
    return zones


def _controller(device: IrrigationDevice, owner: str | None, now: datetime) -> ControllerView:
    state = device.state or {}
    elapsed = (now - device.state_at).total_seconds() if device.state_at and device.online else 0
    view = ControllerView(
        device=device,
        owner=owner,
        name=str(state.get("devicename") or ""),
        status_text=DEVICE_STATUS.get(_as_int(state.get("devicestatus"), -1), "never reported")
        if state
        else "never reported",
        zones=_zones(state, elapsed=max(0.0, elapsed)),
        programs=[p for p in state.get("timerdata") or [] if isinstance(p, dict)],
    )
    if "usedwater" in state:
        view.used_gallons = _as_int(state.get("usedwater"))
        view.used_since = _as_int(state.get("usedwaterzerodate"))
        price = _as_int(state.get("pricepergallon"))
        view.cost_dollars = round(view.used_gallons * price / 100, 2)
    return view


@router.get("/irrigation", response_class=HTMLResponse)
async def irrigation_page(
    request: Request,
    user: ConsoleUser,
    services: ServicesDep,
    session: SessionDep,
    message: Annotated[str | None, Query(max_length=NOTE_MAX)] = None,
    error: Annotated[str | None, Query(max_length=NOTE_MAX)] = None,
    device: Annotated[str | None, Query(max_length=DEVICE_ID_MAX)] = None,
) -> Response:
    require_family(services, FAMILY)
    total = await session.scalar(select(func.count(IrrigationDevice.id))) or 0
    rows = (
        await session.execute(
            select(IrrigationDevice, IrrigationUser.name)
            .outerjoin(IrrigationUser, IrrigationUser.id == IrrigationDevice.owner_id)
            .order_by(IrrigationDevice.online.desc(), IrrigationDevice.deviceid)
            .limit(MAX_CONTROLLERS)
        )
    ).all()
    now = services.clock.now()
    controllers = [_controller(d, owner, now) for d, owner in rows]
    picked = device.strip().upper() if device else None
    detailed = (
        [c for c in controllers if c.device.deviceid == picked]
        if picked
        else controllers[:DETAIL_CARDS]
    )
    for view in detailed:
        view.history = list(
            (
                await session.scalars(
                    select(IrrigationEvent)
                    .where(IrrigationEvent.device_id == view.device.id)
                    .order_by(IrrigationEvent.at.desc(), IrrigationEvent.id.desc())
                    .limit(HISTORY_ROWS)
                )
            ).all()
        )
    return render(
        request,
        "irrigation.html",
        user=user,
        services=services,
        context={
            "controllers": controllers,
            "total": total,
            "online": sum(1 for c in controllers if c.device.online),
            "detailed": detailed,
            "picked": picked,
            "message": message,
            "error": error,
        },
    )


def _back(deviceid: str, **query: str) -> Response:
    """Back to the page showing that controller, with what happened."""
    # Cut to what the page's query accepts, whatever the path carried.
    query = {"device": deviceid.strip().upper()[:DEVICE_ID_MAX]} | {
        key: value[:NOTE_MAX] for key, value in query.items()
    }
    return RedirectResponse(f"/console/irrigation?{urlencode(query)}", status_code=303)


async def _send(services: Services, deviceid: str, op: str, args: dict[str, Any]) -> str | None:
    """Send ``op`` through the family's link; the error text, or None when acknowledged."""
    deviceid = deviceid.strip().upper()
    async with services.db.session() as session:
        device = await service.device_by_id(session, deviceid)
        online = device is not None and device.online
    if device is None:
        return "unknown controller"
    if not online:
        return ERRORS[119][1]
    link: IrrigationLink = services.extras[EXTRA_KEY]
    try:
        ack = await link.command(deviceid, op, args)
    except AifroError as exc:
        return ERRORS.get(exc.code, (0, f"error {exc.code}"))[1]
    if ack.code != 0:
        return ERRORS.get(ack.code, (0, f"controller answered code {ack.code}"))[1]
    return None


@router.post("/irrigation/{deviceid}/start")
async def start_zone(
    deviceid: str,
    _user: ConsoleUser,
    services: ServicesDep,
    zone: Annotated[int, Form(ge=1, le=MAX_ZONE)],
) -> Response:
    """Water one zone now (API 00202's command with a one-zone task list, no delay)."""
    require_family(services, FAMILY)
    problem = await _send(services, deviceid, OP_START, {"delaytime": 0, "tasklist": [zone]})
    if problem:
        return _back(deviceid, error=f"zone {zone}: {problem}")
    return _back(deviceid, message=f"zone {zone} started")


@router.post("/irrigation/{deviceid}/stop")
async def stop_watering(deviceid: str, _user: ConsoleUser, services: ServicesDep) -> Response:
    """Stop whatever the controller is watering (API 00203's command: the whole task)."""
    require_family(services, FAMILY)
    problem = await _send(services, deviceid, OP_STOP, {})
    if problem:
        return _back(deviceid, error=problem)
    return _back(deviceid, message="watering stopped")
