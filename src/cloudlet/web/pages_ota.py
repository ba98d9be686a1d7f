"""OTA page: products, packages, tasks with a progress bar, strategies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.services import ServicesDep, SessionDep
from cloudlet.ota.models import (
    OtaDevice,
    OtaPackage,
    OtaProduct,
    OtaStrategy,
    OtaTask,
    OtaTaskDevice,
)
from cloudlet.web.console import ConsoleUser
from cloudlet.web.pages import render, require_family

FAMILY = "ota"
MAX_ROWS = 200
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
        },
    )
