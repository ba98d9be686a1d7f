"""Irrigation page: controllers, zones, programs, history and water; start/stop a zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.services import Services, ServicesDep, SessionDep
from cloudlet.irrigation import service, status
from cloudlet.irrigation.api import EXTRA_KEY
from cloudlet.irrigation.errors import ERRORS, AifroError
from cloudlet.irrigation.link import IrrigationLink
from cloudlet.irrigation.models import IrrigationDevice, IrrigationEvent, IrrigationUser
from cloudlet.irrigation.protocol import MAX_DURATION_MINUTES, OP_START, OP_STOP
from cloudlet.web.console import ConsoleUser, templates
from cloudlet.web.pages import Flash, redirect_with, render, require_family

FAMILY = "irrigation"
HISTORY_ROWS = 15
MAX_CONTROLLERS = 200  # cards on the page (online first)
MAX_ZONE = 52
DEVICE_ID_MAX = 32  # ids are 16 hex characters; a little slack for spaces
UNKNOWN_CONTROLLER = "unknown controller"

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # week mask bit 0 is Monday

router = APIRouter()


def weekdays(mask: Any) -> str:
    """A program's ``week`` mask as day names ("never" for 0)."""
    days = [name for bit, name in enumerate(WEEKDAYS) if status.as_int(mask) >> bit & 1]
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

    @property
    def default_minutes(self) -> int:
        """The start form's suggestion: the zone's own run time, in whole minutes."""
        return min(MAX_DURATION_MINUTES, max(1, -(-self.watertime // 60)))


@dataclass
class ControllerView:
    device: IrrigationDevice
    owner: str | None
    name: str
    status_text: str
    task: str
    task_left: int
    zones: list[ZoneView] = field(default_factory=list)
    programs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    used_gallons: int | None = None
    used_since: int | None = None
    cost_dollars: float | None = None
    history: list[IrrigationEvent] = field(default_factory=list)

    @property
    def watering_zones(self) -> list[int]:
        return [z.index for z in self.zones if z.status == status.ZONE_WATERING]

    @property
    def running(self) -> bool:
        """A task runs (a zone waters, soaks or waits): the only time Stop means anything."""
        return self.device.online and self.task != status.NO_TASK


def _zones(state: dict[str, Any], *, elapsed: float) -> list[ZoneView]:
    """The connected zones only (``connectedvalves``)."""
    return [
        ZoneView(
            index=index,
            name=str(raw.get("valvesname") or f"Zone {index}"),
            enabled=bool(raw.get("enabled", 1)),
            status=status.as_int(raw.get("status")),
            status_text=status.ZONE_STATUS.get(
                status.as_int(raw.get("status")), f"status {raw.get('status')}"
            ),
            watertime=status.as_int(raw.get("watertime")),
            wateredtime=status.as_int(raw.get("wateredtime")),
            totalwateredtime=status.as_int(raw.get("totalwateredtime")),
            remaining=status.zone_remaining(raw, elapsed=elapsed, state=state),
        )
        for index, raw in enumerate(status.zones(state), start=1)
    ]


def _controller(device: IrrigationDevice, owner: str | None, now: datetime) -> ControllerView:
    state = device.state or {}
    elapsed = (now - device.state_at).total_seconds() if device.state_at and device.online else 0
    elapsed = max(0.0, elapsed)
    view = ControllerView(
        device=device,
        owner=owner,
        name=str(state.get("devicename") or ""),
        status_text=status.DEVICE_STATUS.get(
            status.as_int(state.get("devicestatus"), -1), "never reported"
        )
        if state
        else "never reported",
        task=status.running_task(state),
        task_left=status.task_remaining(state, elapsed=elapsed),
        zones=_zones(state, elapsed=elapsed),
        # The slots in use (a controller reports all 8; empty ones have addedflag 0).
        programs=[
            (slot, p)
            for slot, p in enumerate(state.get("timerdata") or [], start=1)
            if isinstance(p, dict) and (p.get("addedflag") or p.get("tasklist"))
        ],
    )
    if "usedwater" in state:
        view.used_gallons = status.as_int(state.get("usedwater"))
        view.used_since = status.as_int(state.get("usedwaterzerodate"))
        price = status.as_int(state.get("pricepergallon"))
        view.cost_dollars = round(view.used_gallons * price / 100, 2)
    return view


async def _histories(session: AsyncSession, views: list[ControllerView]) -> None:
    """The newest ``HISTORY_ROWS`` events of each controller, in one query."""
    by_id = {view.device.id: view for view in views}
    if not by_id:
        return
    numbered = (
        select(
            IrrigationEvent.id,
            func.row_number()
            .over(
                partition_by=IrrigationEvent.device_id,
                order_by=(IrrigationEvent.at.desc(), IrrigationEvent.id.desc()),
            )
            .label("n"),
        )
        .where(IrrigationEvent.device_id.in_(by_id))
        .subquery()
    )
    events = await session.scalars(
        select(IrrigationEvent)
        .join(numbered, numbered.c.id == IrrigationEvent.id)
        .where(numbered.c.n <= HISTORY_ROWS)
        .order_by(IrrigationEvent.at.desc(), IrrigationEvent.id.desc())
    )
    for event in events.all():
        by_id[event.device_id].history.append(event)


@router.get("/irrigation", response_class=HTMLResponse)
async def irrigation_page(
    request: Request,
    user: ConsoleUser,
    services: ServicesDep,
    session: SessionDep,
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
    if picked and picked not in {c.device.deviceid for c in controllers}:
        found = await service.device_by_id(session, picked)
        if found is not None:  # beyond the first page: shown on its own, first
            controllers.insert(0, _controller(found, None, now))
    await _histories(session, controllers)
    return render(
        request,
        "irrigation.html",
        user=user,
        services=services,
        context={
            "controllers": controllers,
            "total": total,
            "online": sum(1 for c in controllers if c.device.online),
            "picked": picked,
            "max_duration": MAX_DURATION_MINUTES,
        },
    )


def _back(deviceid: str, flash: Flash) -> Response:
    """Back to the page with that controller open, and what happened (once)."""
    picked = deviceid.strip().upper()[:DEVICE_ID_MAX]
    url = f"/console/irrigation?{urlencode({'device': picked})}#controller-{quote(picked)}"
    return redirect_with(url, flash)


async def _send(services: Services, deviceid: str, op: str, args: dict[str, Any]) -> str | None:
    """Send ``op`` through the family's link; the error text, or None when acknowledged."""
    deviceid = deviceid.strip().upper()
    async with services.db.session() as session:
        device = await service.device_by_id(session, deviceid)
        online = device is not None and device.online
    if device is None:
        return UNKNOWN_CONTROLLER
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


def _whole(raw: str, low: int, high: int) -> int | None:
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        return None
    return int(text)


@router.post("/irrigation/{deviceid}/start")
async def start_zone(
    deviceid: str,
    _user: ConsoleUser,
    services: ServicesDep,
    zone: Annotated[str, Form(max_length=8)] = "",
    minutes: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """Water one zone now for a number of minutes (API 00202's command with a one-zone task
    list and no delay; ``duration`` is Cloudlet's extension, as in ``timerdata``)."""
    require_family(services, FAMILY)
    number = _whole(zone, 1, MAX_ZONE)
    if number is None:
        return _back(deviceid, Flash("No such zone.", error=True))
    field_name = f"minutes-{deviceid.strip().upper()}-{number}"
    length = _whole(minutes, 1, MAX_DURATION_MINUTES)
    if length is None:
        text = f"Enter whole minutes from 1 to {MAX_DURATION_MINUTES}."
        return _back(deviceid, Flash(text, error=True, field=field_name))
    args = {"delaytime": 0, "tasklist": [number], "duration": length}
    problem = await _send(services, deviceid, OP_START, args)
    if problem:
        # Beside the zone's field, unless there is no such controller (nor field) to show.
        beside = None if problem == UNKNOWN_CONTROLLER else field_name
        return _back(deviceid, Flash(f"Zone {number}: {problem}", error=True, field=beside))
    return _back(deviceid, Flash(f"Zone {number} started for {length} min."))


@router.post("/irrigation/{deviceid}/stop")
async def stop_watering(deviceid: str, _user: ConsoleUser, services: ServicesDep) -> Response:
    """Stop whatever the controller is watering (API 00203's command: the whole task)."""
    require_family(services, FAMILY)
    problem = await _send(services, deviceid, OP_STOP, {})
    if problem:
        return _back(deviceid, Flash(problem, error=True))
    return _back(deviceid, Flash("Watering stopped."))
