"""Scale page: devices, members with a weight trend and body composition, recent records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import func, select

from cloudlet.core.services import ServicesDep, SessionDep
from cloudlet.scale import service
from cloudlet.scale.homeassistant import battery_percent
from cloudlet.scale.manage import _csv_rows
from cloudlet.scale.models import ScaleDevice, ScaleMember, ScaleRecord
from cloudlet.scale.runtime import ScaleRuntime, runtime_of
from cloudlet.web.console import ConsoleUser, templates
from cloudlet.web.pages import Chart, line_chart, render, require_family

FAMILY = "scale"
RECENT_RECORDS = 25
PAGE_ROWS = 50  # measurements a member page lists
MEMBER_CHART_POINTS = 365  # newest measurements drawn on a member page
CHART_POINTS = 60  # newest measurements drawn per member
MAX_MEMBERS = 30  # members with a chart, most recently weighed first

router = APIRouter()
templates.env.filters["battery_percent"] = battery_percent
LONG_ID = 16  # member ids longer than this (app UUIDs) are shortened where no name exists


def member_label(member_id: str, name: str | None = None) -> str:
    """What the pages call a member: the profile's name, else its id (an app's UUID cut to
    its first 8 characters; the full id stays on the member's page)."""
    if name:
        return name
    if len(member_id) > LONG_ID:
        return f"member {member_id[:8]}…"
    return member_id or "no member"


templates.env.globals["member_label"] = member_label


@dataclass
class MemberView:
    member_id: str
    profile: ScaleMember | None
    records: int
    last_ms: int
    chart: Chart | None = None
    latest_kg: float | None = None
    bmi: float | None = None
    composition: dict[str, Any] | None = None


async def _member_views(session: Any, services: Any) -> tuple[list[MemberView], int]:
    """Every member with a profile or records (newest first), and how many were left out."""
    profiles = {m.member_id: m for m in await service.list_members(session)}
    views: dict[str, MemberView] = {}
    for seen in await service.seen_members(session):
        view = views.setdefault(seen.member_id, MemberView(seen.member_id, None, 0, 0))
        view.records += seen.records
        view.last_ms = max(view.last_ms, seen.last_timestamp_ms)
    for device in await service.list_devices(session):
        if device.default_member_id and device.default_member_id not in views:
            views[device.default_member_id] = MemberView(device.default_member_id, None, 0, 0)
    for member_id, profile in profiles.items():
        views.setdefault(member_id, MemberView(member_id, None, 0, 0)).profile = profile
    ordered = sorted(views.values(), key=lambda v: (-v.last_ms, v.member_id))
    shown = ordered[:MAX_MEMBERS]
    runtime = runtime_of(services)
    for view in shown:
        rows = await service.list_records(
            session, where=service.RecordFilter(member_id=view.member_id), limit=CHART_POINTS
        )
        if not rows:
            continue
        if view.records == 0:  # only reached through a device's default member
            view.records = await service.count_records(
                session, where=service.RecordFilter(member_id=view.member_id)
            )
            view.last_ms = rows[0][0].timestamp_ms
        view.chart = line_chart(
            [(r.timestamp_ms, r.weight_kg) for r, _ in reversed(rows)], unit="kg"
        )
        latest, device = rows[0]
        view.latest_kg = latest.weight_kg
        view.bmi, view.composition = service.assess(
            record=latest,
            member=view.profile,
            decoder=runtime.decoder_for(device.device_type),
        )
    return shown, len(ordered) - len(shown)


@router.get("/scale", response_class=HTMLResponse)
async def scale_page(
    request: Request, user: ConsoleUser, services: ServicesDep, session: SessionDep
) -> Response:
    require_family(services, FAMILY)
    # One grouped count rather than one query per device (fleets of a thousand scales).
    grouped = await session.execute(
        select(ScaleRecord.device_id, func.count(ScaleRecord.id)).group_by(ScaleRecord.device_id)
    )
    counts = {device_id: int(count) for device_id, count in grouped.all()}
    devices = [(d, counts.get(d.id, 0)) for d in await service.list_devices(session)]
    defaults = await service.members_by_id(
        session, member_ids={d.default_member_id for d, _ in devices if d.default_member_id}
    )
    members, members_left_out = await _member_views(session, services)
    rows = await service.list_records(session, where=service.RecordFilter(), limit=RECENT_RECORDS)
    profiles = await service.members_by_id(
        session, member_ids={service.member_of(r, d) for r, d in rows}
    )
    runtime = runtime_of(services)
    recent = [_row(record, device, profiles, runtime) for record, device in rows]
    total = await service.count_records(session, where=service.RecordFilter())
    return render(
        request,
        "scale.html",
        user=user,
        services=services,
        context={
            "devices": devices,
            "names": {
                d.default_member_id: member_label(
                    d.default_member_id,
                    defaults[d.default_member_id].name if d.default_member_id in defaults else None,
                )
                for d, _ in devices
                if d.default_member_id
            },
            "members": members,
            "members_left_out": members_left_out,
            "recent": recent,
            "total_records": total,
        },
    )


@dataclass
class RecordRow:
    """One measurement as the tables show it."""

    record: ScaleRecord
    device: ScaleDevice
    member_id: str
    name: str
    bmi: float | None
    composition: dict[str, Any]


def _row(
    record: ScaleRecord,
    device: ScaleDevice,
    profiles: dict[str, ScaleMember],
    runtime: ScaleRuntime,
) -> RecordRow:
    member_id = service.member_of(record, device)
    profile = profiles.get(member_id)
    bmi, composition = service.assess(
        record=record, member=profile, decoder=runtime.decoder_for(device.device_type)
    )
    name = member_label(member_id, profile.name if profile is not None else None)
    return RecordRow(record, device, member_id, name, bmi, composition)


@router.get("/scale/members/{member_id}", response_class=HTMLResponse)
async def member_page(
    request: Request,
    member_id: str,
    user: ConsoleUser,
    services: ServicesDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """One member: profile, the weight trend and every measurement, newest first."""
    require_family(services, FAMILY)
    where = service.RecordFilter(member_id=member_id)
    total = await service.count_records(session, where=where)
    profile = (await service.members_by_id(session, member_ids={member_id})).get(member_id)
    if total == 0 and profile is None:
        raise HTTPException(status_code=404, detail="no such member")
    runtime = runtime_of(services)
    profiles = {member_id: profile} if profile is not None else {}
    rows = await service.list_records(
        session, where=where, limit=PAGE_ROWS, offset=(page - 1) * PAGE_ROWS
    )
    trend = await service.list_records(session, where=where, limit=MEMBER_CHART_POINTS)
    chart = line_chart([(r.timestamp_ms, r.weight_kg) for r, _ in reversed(trend)], unit="kg")
    return render(
        request,
        "scale_member.html",
        user=user,
        services=services,
        context={
            "member_id": member_id,
            "profile": profile,
            "name": member_label(member_id, profile.name if profile is not None else None),
            "chart": chart,
            "chart_points": len(trend),
            "rows": [_row(record, device, profiles, runtime) for record, device in rows],
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_ROWS)),
        },
    )


@router.get("/scale/measurements.csv")
async def scale_csv(_user: ConsoleUser, services: ServicesDep) -> Response:
    """The management API's CSV export (same columns), behind the console's cookie."""
    require_family(services, FAMILY)
    return StreamingResponse(
        _csv_rows(services, service.RecordFilter()),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="scale-measurements.csv"'},
    )
