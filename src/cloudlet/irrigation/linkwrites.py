"""The device link's writes of presence and state, many controllers in one statement.

A fleet that (re)connects at once sends every controller's presence and retained state
within seconds. Written one controller at a time, each was a statement (a trip to SQLite's
thread and back) inside the process's group commit: 256 of them took about a second, and
every other family's device writes waited behind them (bench/soak.py: the first 15 s of
1,000 devices, p99 2.8 s). These jobs are :class:`cloudlet.core.writer.Together` kinds: a
group commit stores all of one kind with one executemany. Each UPDATE keeps its rule in its
WHERE or in SQL, so a second worker applying the same message changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String, and_, bindparam, case, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.db import UTCDateTime
from cloudlet.irrigation.models import IrrigationDevice

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
