"""Prometheus gauges read from the database, so every worker answers the same figures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import func, select

from cloudlet.core.services import Services
from cloudlet.irrigation.models import IrrigationDevice
from cloudlet.ota.models import OtaTask, OtaTaskDevice
from cloudlet.scale.models import ScaleDevice, ScaleMember, ScaleRecord

Samples = list[tuple[dict[str, str], float]]
Query = Callable[[Any], Awaitable[Samples]]

# Every state an OTA task device can be in (ota.models.OtaTaskDevice.state), shown even at 0.
OTA_STATES = ("pending", "downloading", "upgrading", "success", "failed", "cancelled")


async def irrigation_controllers(session: Any) -> Samples:
    """Controllers by link presence (the ``online`` message every worker stores)."""
    rows = await session.execute(
        select(IrrigationDevice.online, func.count()).group_by(IrrigationDevice.online)
    )
    counts = {bool(online): int(n) for online, n in rows.all()}
    return [
        ({"state": "online"}, float(counts.get(True, 0))),
        ({"state": "offline"}, float(counts.get(False, 0))),
    ]


async def ota_task_devices(session: Any) -> Samples:
    """Devices in upgrade tasks, by where they stand (cancelled tasks included)."""
    rows = await session.execute(
        select(OtaTaskDevice.state, func.count()).group_by(OtaTaskDevice.state)
    )
    counts = {str(state): int(n) for state, n in rows.all()}
    names = list(OTA_STATES) + sorted(set(counts) - set(OTA_STATES))
    return [({"state": name}, float(counts.get(name, 0))) for name in names]


async def ota_tasks(session: Any) -> Samples:
    rows = await session.execute(
        select(OtaTask.cancelled, func.count()).group_by(OtaTask.cancelled)
    )
    counts = {bool(cancelled): int(n) for cancelled, n in rows.all()}
    return [
        ({"state": "active"}, float(counts.get(False, 0))),
        ({"state": "cancelled"}, float(counts.get(True, 0))),
    ]


def _count(model: Any) -> Query:
    async def count(session: Any) -> Samples:
        return [({}, float(await session.scalar(select(func.count()).select_from(model)) or 0))]

    return count


# (family, metric name, help, labels, query)
GAUGES: tuple[tuple[str, str, str, list[str], Query], ...] = (
    (
        "irrigation",
        "cloudlet_irrigation_controllers",
        "Irrigation controllers known, by link presence",
        ["state"],
        irrigation_controllers,
    ),
    (
        "ota",
        "cloudlet_ota_task_devices",
        "Devices in OTA upgrade tasks, by state",
        ["state"],
        ota_task_devices,
    ),
    ("ota", "cloudlet_ota_tasks", "OTA upgrade tasks, active or cancelled", ["state"], ota_tasks),
    (
        "scale",
        "cloudlet_scale_devices",
        "Scales known",
        [],
        _count(ScaleDevice),
    ),
    (
        "scale",
        "cloudlet_scale_records",
        "Scale measurements stored",
        [],
        _count(ScaleRecord),
    ),
    (
        "scale",
        "cloudlet_scale_members",
        "Scale member profiles",
        [],
        _count(ScaleMember),
    ),
)


class DatabaseGauges:
    """Runs every gauge query of the enabled families in one short session before a scrape;
    scrapes closer together than ``min_refresh_seconds`` share the previous figures."""

    def __init__(self, services: Services) -> None:
        self.services = services
        families = set(services.settings.families)
        self.gauges = [g for g in GAUGES if g[0] in families]
        self.samples: dict[str, Samples] = {}
        self._refreshed_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        now = asyncio.get_running_loop().time()
        async with self._lock:
            fresh = self._refreshed_at is not None and (
                now - self._refreshed_at < self.services.settings.metrics.min_refresh_seconds
            )
            if fresh or not self.gauges:
                return
            async with self.services.db.session() as session:
                for _, name, _, _, query in self.gauges:
                    self.samples[name] = await query(session)
            self._refreshed_at = now

    def source(self, name: str, *, first: bool) -> Callable[[], Awaitable[Iterable[Any]]]:
        """The async gauge source of ``name``; only the ``first`` one runs the queries."""

        async def read() -> Samples:
            if first:
                await self.refresh()
            return self.samples.get(name, [])

        return read

    @contextmanager
    def registered(self) -> Any:
        """Register the gauges on the app's registry for as long as the block runs."""
        unregisters = [
            self.services.metrics.gauge_async(
                name, doc, labels, self.source(name, first=index == 0)
            )
            for index, (_, name, doc, labels, _) in enumerate(self.gauges)
        ]
        try:
            yield self
        finally:
            for unregister in unregisters:
                unregister()


def database_gauges(services: Services) -> AbstractContextManager[DatabaseGauges]:
    gauges: AbstractContextManager[DatabaseGauges] = DatabaseGauges(services).registered()
    return gauges
