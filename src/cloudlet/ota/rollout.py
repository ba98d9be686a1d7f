"""Staged rollouts of an OTA task: waves, thresholds that stop it by itself, pause and resume,
a start time, a daily maintenance window and a cap on concurrent downloads.

The device side stays OneNET's south API: a device whose wave has not started (or whose
rollout is paused, stopped, outside its window or at its download cap) is answered as a
device with no task (errno 11) and gets no token; it keeps polling as OneNET devices do.
What hawkBit calls the success and error thresholds are judged on the current wave each time
one of its devices reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.ota import protocol as p
from cloudlet.ota.models import OtaDownloadToken, OtaRollout, OtaTaskDevice
from cloudlet.ota.problem import OtaProblem

MAX_WAVES = 1000


class RolloutState(StrEnum):
    READY = "ready"  # made with its task, not started
    RUNNING = "running"
    PAUSED = "paused"  # by the owner
    STOPPED = "stopped"  # by itself: the error threshold
    CANCELLED = "cancelled"
    FINISHED = "finished"


@dataclass(frozen=True)
class RolloutSpec:
    """How a task's devices are split and judged."""

    first_wave: int
    # Size of every later wave: a count, or a percentage of all the task's devices.
    wave_size: int | None = None
    wave_percent: int | None = None
    success_threshold: int = 100
    error_threshold: int = 10
    start_at: datetime | None = None
    window_start: time | None = None
    window_end: time | None = None
    window_zone: str = "UTC"
    max_downloads: int | None = None


def wave_sizes(total: int, spec: RolloutSpec) -> list[int]:
    """The size of each wave: ``first_wave`` devices, then ``wave_size`` (or
    ``wave_percent`` % of ``total``, at least one) until every device has a wave."""
    if spec.first_wave < 1:
        raise OtaProblem(422, "first_wave must be at least 1")
    later = spec.wave_size
    if later is None and spec.wave_percent is not None:
        later = max(1, math.ceil(total * spec.wave_percent / 100))
    later = later or max(1, total - spec.first_wave)
    sizes = [min(spec.first_wave, total)]
    while sum(sizes) < total:
        sizes.append(min(later, total - sum(sizes)))
    if len(sizes) > MAX_WAVES:
        raise OtaProblem(422, f"more than {MAX_WAVES} waves")
    return sizes


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise OtaProblem(422, f"unknown time zone {name!r}") from exc


def new_rollout(spec: RolloutSpec, *, task_id: int, waves: int, now: datetime) -> OtaRollout:
    for name, value in (
        ("success_threshold", spec.success_threshold),
        ("error_threshold", spec.error_threshold),
    ):
        if not 1 <= value <= 100:
            raise OtaProblem(422, f"{name} must be a percentage from 1 to 100")
    if (spec.window_start is None) != (spec.window_end is None):
        raise OtaProblem(422, "give both ends of the maintenance window, or neither")
    _zone(spec.window_zone)
    return OtaRollout(
        task_id=task_id,
        state=RolloutState.READY.value,
        reason="",
        waves=waves,
        current_wave=1,
        success_threshold=spec.success_threshold,
        error_threshold=spec.error_threshold,
        start_at=spec.start_at,
        window_start=_minutes(spec.window_start),
        window_end=_minutes(spec.window_end),
        window_zone=spec.window_zone,
        max_downloads=spec.max_downloads,
        updated_at=now,
    )


def _minutes(moment: time | None) -> int | None:
    return None if moment is None else moment.hour * 60 + moment.minute


def in_window(rollout: OtaRollout, now: datetime) -> bool:
    """Is ``now`` inside the daily maintenance window (always, without one)?"""
    if rollout.window_start is None or rollout.window_end is None:
        return True
    local = now.astimezone(_zone(rollout.window_zone))
    minute = local.hour * 60 + local.minute
    start, end = rollout.window_start, rollout.window_end
    if start == end:
        return True  # a whole day
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # wraps midnight


def next_window_opening(rollout: OtaRollout, now: datetime) -> datetime | None:
    """When devices will next be let in, for the management API (None: now, or never)."""
    if rollout.state != RolloutState.RUNNING.value:
        return None
    moment = now
    if rollout.start_at is not None and rollout.start_at > moment:
        moment = rollout.start_at
    if in_window(rollout, moment) or rollout.window_start is None:
        return None if moment == now else moment
    zone = _zone(rollout.window_zone)
    local = moment.astimezone(zone)
    opening = local.replace(
        hour=rollout.window_start // 60, minute=rollout.window_start % 60, second=0, microsecond=0
    )
    if opening <= local:
        opening += timedelta(days=1)
    return opening.astimezone(now.tzinfo)


async def _granted(session: AsyncSession, *, task_id: int, now: datetime) -> int:
    """Devices of the task downloading now, or holding a live token to start with."""
    downloading = await session.scalar(
        select(func.count(OtaTaskDevice.id)).where(
            OtaTaskDevice.task_id == task_id,
            OtaTaskDevice.state == p.State.DOWNLOADING.value,
        )
    )
    holding = await session.scalar(
        select(func.count(func.distinct(OtaTaskDevice.id)))
        .join(OtaDownloadToken, OtaDownloadToken.task_device_id == OtaTaskDevice.id)
        .where(
            OtaTaskDevice.task_id == task_id,
            OtaTaskDevice.state == p.State.PENDING.value,
            OtaDownloadToken.expires_at > now,
        )
    )
    return int(downloading or 0) + int(holding or 0)


async def admits(
    session: AsyncSession, *, rollout: OtaRollout, assignment: OtaTaskDevice, now: datetime
) -> bool:
    """May this device of a rolled-out task be given its token now?

    A device already downloading or upgrading carries on whatever the rollout does (as in
    hawkBit, pausing stops devices from starting, not those under way).
    """
    if assignment.state != p.State.PENDING.value:
        return True
    released = assignment.wave is None or assignment.wave <= rollout.current_wave
    # Stopped by its error threshold, a rollout holds its later waves; the devices of the
    # waves already released finish theirs ("stops after that wave").
    if rollout.state == RolloutState.STOPPED.value:
        if not released:
            return False
    elif rollout.state != RolloutState.RUNNING.value or not released:
        return False
    if rollout.start_at is not None and now < rollout.start_at:
        return False
    if not in_window(rollout, now):
        return False
    if rollout.max_downloads is not None:
        live = await session.scalar(
            select(func.count(OtaDownloadToken.id)).where(
                OtaDownloadToken.task_device_id == assignment.id,
                OtaDownloadToken.expires_at > now,
            )
        )
        if not live and await _granted(session, task_id=rollout.task_id, now=now) >= (
            rollout.max_downloads
        ):
            return False
    return True


@dataclass(frozen=True)
class WaveFigures:
    wave: int
    size: int
    succeeded: int
    failed: int
    counts: dict[str, int]


async def wave_figures(session: AsyncSession, task_id: int, waves: int) -> list[WaveFigures]:
    """Each wave's size, successes, failures (a device that reported a failure and has not
    succeeded since, or whose task ended failed) and devices by state, grouped by the
    database."""
    # The same text in SELECT and GROUP BY: PostgreSQL refuses two bound zeros as two
    # different expressions.
    has_failed = OtaTaskDevice.failures > literal_column("0")
    rows = await session.execute(
        select(
            OtaTaskDevice.wave,
            OtaTaskDevice.state,
            has_failed,
            func.count(OtaTaskDevice.id),
        )
        .where(OtaTaskDevice.task_id == task_id)
        .group_by(OtaTaskDevice.wave, OtaTaskDevice.state, has_failed)
    )
    counts: dict[int, dict[str, int]] = {wave: {} for wave in range(1, waves + 1)}
    failed = dict.fromkeys(counts, 0)
    for wave, state, reported_failure, count in rows.all():
        if wave not in counts:
            continue
        counts[wave][state] = counts[wave].get(state, 0) + int(count)
        success = state == p.State.SUCCESS.value
        if state == p.State.FAILED.value or (reported_failure and not success):
            failed[wave] += int(count)
    return [
        WaveFigures(
            wave=wave,
            size=sum(by_state.values()),
            succeeded=by_state.get(p.State.SUCCESS.value, 0),
            failed=failed[wave],
            counts=by_state,
        )
        for wave, by_state in counts.items()
    ]


_ACTIVE = frozenset(s.value for s in p.ACTIVE_STATES)


async def rollout_of(session: AsyncSession, task_id: int) -> OtaRollout | None:
    """The task's rollout, if it is staged."""
    found: OtaRollout | None = await session.scalar(
        select(OtaRollout).where(OtaRollout.task_id == task_id)
    )
    return found


async def judge(session: AsyncSession, *, rollout: OtaRollout, now: datetime) -> None:
    """After a device of the rollout reported: stop on the error threshold, start the next
    wave on the success threshold, finish when the last wave is done."""
    if rollout.state != RolloutState.RUNNING.value:
        return
    waves = await wave_figures(session, rollout.task_id, rollout.waves)
    current = waves[rollout.current_wave - 1]
    if current.size and current.failed * 100 >= rollout.error_threshold * current.size:
        rollout.state = RolloutState.STOPPED.value
        rollout.reason = (
            f"wave {current.wave}: {current.failed} of {current.size} devices failed, "
            f"at least the error threshold of {rollout.error_threshold} %"
        )
        rollout.updated_at = now
        return
    if current.succeeded * 100 < rollout.success_threshold * current.size:
        return
    if rollout.current_wave < rollout.waves:
        rollout.current_wave += 1
        rollout.updated_at = now
        return
    if not any(state in _ACTIVE for wave in waves for state in wave.counts):
        rollout.state = RolloutState.FINISHED.value
        rollout.reason = "every wave reached its success threshold"
        rollout.updated_at = now


def start(rollout: OtaRollout, *, now: datetime) -> None:
    if rollout.state != RolloutState.READY.value:
        raise OtaProblem(409, f"a {rollout.state} rollout cannot be started")
    rollout.state, rollout.reason, rollout.updated_at = RolloutState.RUNNING.value, "", now


def pause(rollout: OtaRollout, *, now: datetime) -> None:
    if rollout.state != RolloutState.RUNNING.value:
        raise OtaProblem(409, f"a {rollout.state} rollout cannot be paused")
    rollout.state, rollout.reason, rollout.updated_at = (
        RolloutState.PAUSED.value,
        "paused by the owner",
        now,
    )


def resume(rollout: OtaRollout, *, now: datetime) -> None:
    """Go on after a pause; after a stop, go on with the next wave (the owner has looked
    at the failures and decided to continue)."""
    if rollout.state == RolloutState.STOPPED.value:
        if rollout.current_wave < rollout.waves:
            rollout.current_wave += 1
    elif rollout.state != RolloutState.PAUSED.value:
        raise OtaProblem(409, f"a {rollout.state} rollout cannot be resumed")
    rollout.state, rollout.reason, rollout.updated_at = RolloutState.RUNNING.value, "", now


def cancel(rollout: OtaRollout, *, now: datetime) -> None:
    if rollout.state in (RolloutState.FINISHED.value, RolloutState.CANCELLED.value):
        return
    rollout.state, rollout.reason, rollout.updated_at = (
        RolloutState.CANCELLED.value,
        "cancelled by the owner",
        now,
    )
