"""The overview: a few figures per family and what happened lately, newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet import __version__
from cloudlet.core.services import Services, ServicesDep, SessionDep
from cloudlet.web.console import ConsoleUser
from cloudlet.web.pages import render

RECENT = 5  # weighings, watering controllers, OTA tasks listed
EVENTS = 12  # recent events across the families
WATCHED_CONTROLLERS = 1000  # online controllers whose reports are read for "watering now"

router = APIRouter()


@dataclass
class Event:
    at: datetime
    family: str
    text: str
    link: str


@dataclass
class Overview:
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _scale(session: AsyncSession, overview: Overview) -> None:
    from cloudlet.scale import service
    from cloudlet.scale.models import ScaleDevice, ScaleRecord
    from cloudlet.web.pages_scale import member_label

    rows = await service.list_records(session, where=service.RecordFilter(), limit=EVENTS)
    profiles = await service.members_by_id(
        session, member_ids={service.member_of(r, d) for r, d in rows}
    )
    weighings = []
    for record, device in rows:
        member_id = service.member_of(record, device)
        profile = profiles.get(member_id)
        name = member_label(member_id, profile.name if profile is not None else None)
        weighings.append((record, device, name, member_id))
    overview.figures["scale"] = {
        "scales": await session.scalar(select(func.count(ScaleDevice.id))) or 0,
        "records": await session.scalar(select(func.count(ScaleRecord.id))) or 0,
        "weighings": weighings[:RECENT],
    }
    for record, device, name, member_id in weighings:
        overview.events.append(
            Event(
                _utc(record.received_at),
                "scale",
                f"{name} weighed {record.weight_kg:.2f} kg on {device.sn}",
                f"/console/scale/members/{member_id}" if member_id else "/console/scale",
            )
        )


async def _irrigation(session: AsyncSession, services: Services, overview: Overview) -> None:
    from cloudlet.irrigation import status
    from cloudlet.irrigation.models import IrrigationDevice, IrrigationEvent

    total = await session.scalar(select(func.count(IrrigationDevice.id))) or 0
    online = (
        await session.scalar(
            select(func.count(IrrigationDevice.id)).where(IrrigationDevice.online.is_(True))
        )
        or 0
    )
    now = services.clock.now()
    watering = []
    reports = await session.execute(
        select(IrrigationDevice.deviceid, IrrigationDevice.state, IrrigationDevice.state_at)
        .where(IrrigationDevice.online.is_(True), IrrigationDevice.state.is_not(None))
        .order_by(IrrigationDevice.deviceid)
        .limit(WATCHED_CONTROLLERS)
    )
    for deviceid, state, state_at in reports.all():
        report = state or {}
        if status.running_task(report) == status.NO_TASK:
            continue
        elapsed = max(0.0, (now - _utc(state_at)).total_seconds()) if state_at else 0.0
        watering.append(
            {
                "deviceid": deviceid,
                "name": str(report.get("devicename") or deviceid),
                "zones": report.get("runtasklist") or [],
                "task": status.running_task(report),
                "left": status.task_remaining(report, elapsed=elapsed),
            }
        )
    overview.figures["irrigation"] = {
        "controllers": total,
        "online": online,
        "watering": watering,
    }
    events = await session.execute(
        select(IrrigationEvent, IrrigationDevice.deviceid)
        .join(IrrigationDevice, IrrigationDevice.id == IrrigationEvent.device_id)
        .order_by(IrrigationEvent.at.desc(), IrrigationEvent.id.desc())
        .limit(EVENTS)
    )
    for event, deviceid in events.all():
        overview.events.append(
            Event(
                _utc(event.at),
                "irrigation",
                f"{deviceid}: {event.event}",
                f"/console/irrigation?device={deviceid}",
            )
        )


async def _ota(session: AsyncSession, overview: Overview) -> None:
    from cloudlet.ota.models import OtaDevice, OtaProduct, OtaTask, OtaTaskDevice
    from cloudlet.web.pages_ota import views_of

    unfinished = (
        select(OtaTaskDevice.task_id)
        .where(OtaTaskDevice.state.in_(("pending", "downloading", "upgrading")))
        .distinct()
    )
    active = (
        await session.scalars(
            select(OtaTask)
            .where(OtaTask.cancelled.is_(False), OtaTask.id.in_(unfinished))
            .order_by(OtaTask.id.desc())
        )
    ).all()
    names = dict((await session.execute(select(OtaProduct.id, OtaProduct.name))).all())
    overview.figures["ota"] = {
        "devices": await session.scalar(select(func.count(OtaDevice.id))) or 0,
        "active": len(active),
        "tasks": await views_of(session, active[:RECENT], names),
    }
    changes = await session.execute(
        select(OtaTaskDevice, OtaDevice.name, OtaTask.target_version)
        .join(OtaDevice, OtaDevice.id == OtaTaskDevice.device_id)
        .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
        .order_by(OtaTaskDevice.updated_at.desc(), OtaTaskDevice.id.desc())
        .limit(EVENTS)
    )
    for assignment, name, target in changes.all():
        overview.events.append(
            Event(
                _utc(assignment.updated_at),
                "ota",
                f"{name} → {target}: {assignment.state}",
                "/console/ota",
            )
        )


async def gather(services: Services, session: AsyncSession) -> Overview:
    """Figures of every family this server runs, and the newest events across them."""
    overview = Overview()
    families = services.settings.families
    if "scale" in families:
        await _scale(session, overview)
    if "irrigation" in families:
        await _irrigation(session, services, overview)
    if "ota" in families:
        await _ota(session, overview)
    if "gateway" in families:
        from cloudlet.gateway.homeassistant import read_box

        overview.figures["gateway"] = await read_box(services)
    overview.events.sort(key=lambda event: event.at, reverse=True)
    del overview.events[EVENTS:]
    return overview


@router.get("/", response_class=HTMLResponse)
async def overview_page(
    request: Request, user: ConsoleUser, services: ServicesDep, session: SessionDep
) -> Response:
    overview = await gather(services, session)
    return render(
        request,
        "overview.html",
        user=user,
        services=services,
        context={"version": __version__, "figures": overview.figures, "events": overview.events},
    )
