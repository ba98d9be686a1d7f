"""The device link's writes of presence, state and history, many controllers in one
statement.

A fleet that (re)connects at once sends every controller's presence and retained state
within seconds. Written one controller at a time, each was a statement (a trip to SQLite's
thread and back) inside the process's group commit: 256 of them took about a second, and
every other family's device writes waited behind them (bench/soak.py: the first 15 s of
1,000 devices, p99 2.8 s). These jobs are :class:`cloudlet.core.writer.Together` kinds: a
group commit stores all of one kind with one executemany. Each UPDATE keeps its rule in its
WHERE or in SQL, so a second worker applying the same message changes nothing.

History is stored the same way (:class:`EventWrite`). It came right after every command's
ack, and as an ORM job (load the device, read the known entries, add, flush) it took a
group commit ~3 ms on a busy loop; the ack's own state write waited in the same group, and
so did the app's 00202 answer (bench/irrigation.py: p50 8.9-9.7 → 6.1-7.7 ms).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, and_, bindparam, case, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.db import UTCDateTime
from cloudlet.irrigation.models import IrrigationDevice, IrrigationEvent

# Bound names differ from the columns': SQLAlchemy keeps a column's own name for its SET.
_STATE = (
    update(IrrigationDevice)
    .where(
        IrrigationDevice.deviceid == bindparam("b_deviceid", type_=String()),
        # Newer: another boot, or a later report of the same boot.
        or_(
            IrrigationDevice.state_boot != bindparam("b_boot", type_=String()),
            IrrigationDevice.state_seq < bindparam("b_seq", type_=Integer()),
        ),
    )
    .values(
        state=bindparam("b_state", type_=IrrigationDevice.__table__.c.state.type),
        state_boot=bindparam("b_boot", type_=String()),
        state_seq=bindparam("b_seq", type_=Integer()),
        state_at=bindparam("b_at", type_=UTCDateTime()),
    )
)

_ONLINE = bindparam("b_online", type_=Boolean())
_NOW = bindparam("b_now", type_=UTCDateTime())
# SET expressions read the row as it was: the time of a change only when it changes, the
# first sighting only the first time the controller comes online.
_PRESENCE = (
    update(IrrigationDevice)
    .where(IrrigationDevice.deviceid == bindparam("b_deviceid", type_=String()))
    .values(
        online=_ONLINE,
        online_changed_at=case(
            (IrrigationDevice.online != _ONLINE, _NOW), else_=IrrigationDevice.online_changed_at
        ),
        first_seen_at=case(
            (and_(IrrigationDevice.first_seen_at.is_(None), _ONLINE), _NOW),
            else_=IrrigationDevice.first_seen_at,
        ),
    )
)


async def _execute_many(session: AsyncSession, statement: Any, rows: list[dict[str, Any]]) -> None:
    connection = await session.connection()
    await connection.execute(statement, rows)


@dataclass(frozen=True)
class StateWrite:
    """A controller's state report, known to be newer than the stored one when read."""

    deviceid: str
    boot: str
    seq: int
    status: dict[str, Any]
    at: datetime

    async def __call__(self, session: AsyncSession) -> None:
        await self.together(session, [self])

    @classmethod
    async def together(cls, session: AsyncSession, jobs: Sequence[StateWrite]) -> list[None]:
        rows = [
            {
                "b_deviceid": job.deviceid,
                "b_boot": job.boot,
                "b_seq": job.seq,
                "b_state": job.status,
                "b_at": job.at,
            }
            for job in jobs
        ]
        await _execute_many(session, _STATE, rows)
        return [None] * len(jobs)


@dataclass(frozen=True)
class PresenceWrite:
    """A controller came online or went offline."""

    deviceid: str
    online: bool
    at: datetime

    async def __call__(self, session: AsyncSession) -> None:
        await self.together(session, [self])

    @classmethod
    async def together(cls, session: AsyncSession, jobs: Sequence[PresenceWrite]) -> list[None]:
        rows = [{"b_deviceid": j.deviceid, "b_online": j.online, "b_now": j.at} for j in jobs]
        await _execute_many(session, _PRESENCE, rows)
        return [None] * len(jobs)


_EVENT_COLUMNS = ("device_id", "boot", "number", "at", "event", "details")
# The device's row id looked up in the statement itself: an unknown (or just deleted)
# controller stores nothing.
_EVENT_ROW = select(
    IrrigationDevice.id,
    bindparam("b_boot", type_=String()),
    bindparam("b_number", type_=Integer()),
    bindparam("b_at", type_=UTCDateTime()),
    bindparam("b_event", type_=String()),
    bindparam("b_details", type_=IrrigationEvent.__table__.c.details.type),
).where(IrrigationDevice.deviceid == bindparam("b_deviceid", type_=String()))
# (device, boot, number) is unique: an entry another worker (or an earlier message) stored
# is skipped, never an error that would fail the whole group commit.
_EVENTS = {
    name: dialect.insert(IrrigationEvent)
    .from_select(_EVENT_COLUMNS, _EVENT_ROW)
    .on_conflict_do_nothing()
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}


@dataclass(frozen=True)
class EventWrite:
    """History entries a controller reported (boot, then each entry's number, time, kind
    and details), stored once whichever workers hear them."""

    deviceid: str
    boot: str
    entries: tuple[tuple[int, datetime, str, dict[str, Any]], ...]

    async def __call__(self, session: AsyncSession) -> None:
        await self.together(session, [self])

    @classmethod
    async def together(cls, session: AsyncSession, jobs: Sequence[EventWrite]) -> list[None]:
        rows = [
            {
                "b_deviceid": job.deviceid,
                "b_boot": job.boot,
                "b_number": number,
                "b_at": at,
                "b_event": event,
                "b_details": details,
            }
            for job in jobs
            for number, at, event, details in job.entries
        ]
        if rows:
            await _execute_many(session, _EVENTS[session.get_bind().dialect.name], rows)
        return [None] * len(jobs)
