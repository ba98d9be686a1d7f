"""OTA page: products, packages, tasks with a progress bar, strategies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.services import ServicesDep, SessionDep
from cloudlet.ota import rollout
from cloudlet.ota.models import (
    OtaDevice,
    OtaEvent,
    OtaPackage,
    OtaProduct,
    OtaRollout,
    OtaStrategy,
    OtaTask,
    OtaTaskDevice,
)
from cloudlet.ota.problem import OtaProblem
from cloudlet.ota.protocol import INT32_MAX, MAX_ID
from cloudlet.web.console import ConsoleUser
from cloudlet.web.pages import Flash, redirect_with, render, require_family

FAMILY = "ota"
MAX_ROWS = 200
RECENT_DEVICES = 50  # devices listed (most recently checked first); the rest by the search
TIMELINE_PAGE = 200
# Task device states in the order the bar shows them, with the words the page uses.
STATES = (
    ("pending", "to be upgraded"),
    ("downloading", "downloading"),
    ("upgrading", "upgrading"),
    ("success", "success"),
    ("failed", "failed"),
    ("cancelled", "cancelled"),
)
TYPES = {1: "FOTA", 2: "SOTA"}
KINDS = {1: "full", 2: "differential"}

router = APIRouter()


@dataclass
class TaskView:
    task: OtaTask
    product: str
    counts: dict[str, int]
    total: int
    # Mean download progress (0-100) the downloading devices reported, when any did.
    download_progress: int | None = None

    def summary(self) -> str:
        """``to be upgraded 2 · downloading 1 · ...`` (cancelled only when there are some)."""
        return " · ".join(
            f"{label} {self.counts.get(state, 0)}"
            for state, label in STATES
            if state != "cancelled" or self.counts.get(state)
        )

    def percent(self, state: str) -> float:
        return round(100.0 * self.counts.get(state, 0) / self.total, 2) if self.total else 0.0


async def views_of(
    session: AsyncSession, tasks: Sequence[OtaTask], names: dict[int, str]
) -> list[TaskView]:
    """Each task with its devices counted by state and their mean reported progress."""
    counts: dict[int, dict[str, int]] = {task.id: {} for task in tasks}
    progress: dict[int, int] = {}
    if tasks:
        rows = await session.execute(
            select(OtaTaskDevice.task_id, OtaTaskDevice.state, func.count(OtaTaskDevice.id))
            .where(OtaTaskDevice.task_id.in_(counts))
            .group_by(OtaTaskDevice.task_id, OtaTaskDevice.state)
        )
        for task_id, state, count in rows.all():
            counts[task_id][state] = int(count)
        progress_rows = await session.execute(
            select(OtaTaskDevice.task_id, func.avg(OtaTaskDevice.progress))
            .where(
                OtaTaskDevice.task_id.in_(counts),
                OtaTaskDevice.state == "downloading",
                OtaTaskDevice.progress.is_not(None),
            )
            .group_by(OtaTaskDevice.task_id)
        )
        progress = {task_id: round(float(mean)) for task_id, mean in progress_rows.all()}
    return [
        TaskView(
            task,
            names.get(task.product_id, "?"),
            counts[task.id],
            sum(counts[task.id].values()),
            progress.get(task.id),
        )
        for task in tasks
    ]


@router.get("/ota", response_class=HTMLResponse)
async def ota_page(
    request: Request, user: ConsoleUser, services: ServicesDep, session: SessionDep
) -> Response:
    require_family(services, FAMILY)
    products = (
        await session.execute(
            select(OtaProduct, func.count(OtaDevice.id))
            .outerjoin(OtaDevice, OtaDevice.product_id == OtaProduct.id)
            .group_by(OtaProduct.id)
            .order_by(OtaProduct.id)
        )
    ).all()
    names = {product.id: product.name for product, _ in products}
    packages = (
        await session.scalars(select(OtaPackage).order_by(OtaPackage.id.desc()).limit(MAX_ROWS))
    ).all()
    tasks = (
        await session.scalars(select(OtaTask).order_by(OtaTask.id.desc()).limit(MAX_ROWS))
    ).all()
    task_views = await views_of(session, tasks, names)
    strategies = (await session.scalars(select(OtaStrategy).order_by(OtaStrategy.id))).all()
    rollouts = await _rollout_views(session, [t.task for t in task_views], services.clock.now())
    recent_devices = (
        await session.scalars(
            select(OtaDevice)
            .order_by(OtaDevice.last_check_at.desc().nulls_last(), OtaDevice.dev_id)
            .limit(RECENT_DEVICES)
        )
    ).all()
    return render(
        request,
        "ota.html",
        user=user,
        services=services,
        context={
            "products": products,
            "names": names,
            "packages": packages,
            "tasks": task_views,
            "strategies": strategies,
            "states": STATES,
            "types": TYPES,
            "kinds": KINDS,
            "rollouts": rollouts,
            "devices": recent_devices,
        },
    )


@dataclass
class RolloutView:
    staged: OtaRollout
    task: OtaTask
    waves: list[rollout.WaveFigures]
    next_start: datetime | None

    @property
    def window(self) -> str | None:
        start, end = self.staged.window_start, self.staged.window_end
        if start is None or end is None:
            return None
        return (
            f"{start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d} "
            f"{self.staged.window_zone}"
        )


async def _rollout_views(
    session: AsyncSession, tasks: Sequence[OtaTask], now: datetime
) -> list[RolloutView]:
    by_task = {task.id: task for task in tasks}
    rows = await session.scalars(
        select(OtaRollout).where(OtaRollout.task_id.in_(by_task)).order_by(OtaRollout.id.desc())
    )
    views = []
    for staged in rows:
        views.append(
            RolloutView(
                staged,
                by_task[staged.task_id],
                await rollout.wave_figures(session, staged.task_id, staged.waves),
                rollout.next_window_opening(staged, now),
            )
        )
    return views


ROLLOUT_ACTIONS = {"start": rollout.start, "pause": rollout.pause, "resume": rollout.resume}


@router.post("/ota/tasks/{task_id}/rollout/{action}")
async def control_rollout(
    task_id: Annotated[int, Path(ge=1, le=INT32_MAX)],
    action: str,
    _user: ConsoleUser,
    services: ServicesDep,
    session: SessionDep,
) -> Response:
    """The rollout's Start, Pause and Resume buttons (the management API's actions)."""
    require_family(services, FAMILY)
    change = ROLLOUT_ACTIONS.get(action)
    staged = await rollout.rollout_of(session, task_id)
    if change is None or staged is None:
        raise HTTPException(status_code=404, detail="no such rollout")
    now = services.clock.now()
    try:
        change(staged, now=now)
    except OtaProblem as exc:
        return redirect_with(f"/console/ota#rollout-{task_id}", Flash(exc.detail, error=True))
    await rollout.judge(session, rollout=staged, now=now)
    await session.commit()
    done = {"start": "started", "pause": "paused", "resume": "resumed"}[action]
    return redirect_with(
        f"/console/ota#rollout-{task_id}", Flash(f"Rollout of task #{task_id} {done}.")
    )


@router.get("/ota/device", response_class=HTMLResponse)
async def find_device(
    _user: ConsoleUser,
    services: ServicesDep,
    dev_id: Annotated[str, Query(max_length=24)] = "",
) -> Response:
    """The "find a device" form: on to its page."""
    require_family(services, FAMILY)
    text = dev_id.strip()
    if not text.isascii() or not text.isdigit():
        return redirect_with(
            "/console/ota", Flash("A device id is a number.", error=True, field="dev_id")
        )
    return RedirectResponse(f"/console/ota/devices/{int(text)}", status_code=303)


@router.get("/ota/devices/{dev_id}", response_class=HTMLResponse)
async def device_page(
    request: Request,
    dev_id: Annotated[int, Path(ge=0, le=MAX_ID)],
    user: ConsoleUser,
    services: ServicesDep,
    session: SessionDep,
    after: Annotated[int | None, Query(ge=0, le=INT32_MAX)] = None,
) -> Response:
    """One device: what it runs, its tasks and its whole timeline (oldest first, paged)."""
    require_family(services, FAMILY)
    device = await session.scalar(select(OtaDevice).where(OtaDevice.dev_id == dev_id))
    if device is None:
        raise HTTPException(status_code=404, detail="no such device")
    query = select(OtaEvent).where(OtaEvent.device_id == device.id)
    if after is not None:
        query = query.where(OtaEvent.id > after)
    events = list(await session.scalars(query.order_by(OtaEvent.id).limit(TIMELINE_PAGE + 1)))
    more = len(events) > TIMELINE_PAGE
    events = events[:TIMELINE_PAGE]
    tasks = (
        await session.execute(
            select(OtaTaskDevice, OtaTask)
            .join(OtaTask, OtaTask.id == OtaTaskDevice.task_id)
            .where(OtaTaskDevice.device_id == device.id)
            .order_by(OtaTaskDevice.id.desc())
        )
    ).all()
    product = await session.get(OtaProduct, device.product_id)
    return render(
        request,
        "ota_device.html",
        user=user,
        services=services,
        context={
            "device": device,
            "product": product,
            "tasks": tasks,
            "events": events,
            "next_after": events[-1].id if more and events else None,
            "types": TYPES,
        },
    )
