"""Failed-attempt counters with lockout, kept in the database so every worker agrees.

A family supplies a table with a string key column and ``failures``, ``window_start_ms`` and
``locked_until_ms`` columns; every change is one atomic statement, so parallel guesses all
count on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from cloudlet.core.db import delete_where, insert_if_absent


@dataclass(frozen=True)
class LockoutPolicy:
    """``max_failures`` within ``window_ms`` lock the key for ``lockout_ms``."""

    max_failures: int
    window_ms: int
    lockout_ms: int


@dataclass(frozen=True)
class FailureCounter:
    """The counter table of one kind of attempt (e.g. admin logins by user name)."""

    model: type[Any]
    key: InstrumentedAttribute[str]
    policy: LockoutPolicy

    async def purge(self, session: AsyncSession, *, now_ms: int) -> int:
        """Delete counters that no longer lock and whose window is over; how many."""
        table = self.model
        return await delete_where(
            session,
            table,
            table.locked_until_ms < now_ms,
            table.window_start_ms < now_ms - self.policy.window_ms,
        )

    async def locked_ms(self, session: AsyncSession, key: str, *, now_ms: int) -> int:
        """How many more milliseconds ``key`` stays locked (0: not locked)."""
        until = await session.scalar(select(self.model.locked_until_ms).where(self.key == key))
        return max(0, int(until or 0) - now_ms)

    async def record(self, session: AsyncSession, key: str, *, now_ms: int) -> None:
        """Count one failure; reaching the limit locks ``key`` and starts a new window."""
        table = self.model
        await insert_if_absent(
            session,
            table,
            **{self.key.key: key},
            failures=0,
            window_start_ms=now_ms,
            locked_until_ms=0,
        )
        window_over = (now_ms - table.window_start_ms) > self.policy.window_ms
        failures = await session.scalar(
            update(table)
            .where(self.key == key)
            .values(
                failures=case((window_over, 1), else_=table.failures + 1),
                window_start_ms=case((window_over, now_ms), else_=table.window_start_ms),
            )
            .returning(table.failures)
        )
        if failures is not None and failures >= self.policy.max_failures:
            await session.execute(
                update(table)
                .where(self.key == key)
                .values(
                    failures=0,
                    window_start_ms=now_ms,
                    locked_until_ms=now_ms + self.policy.lockout_ms,
                )
            )

    async def clear(self, session: AsyncSession, key: str) -> None:
        await session.execute(delete(self.model).where(self.key == key))
