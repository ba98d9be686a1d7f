"""SQLite's one writer, taken in turn inside the process rather than by SQLite's busy wait.

SQLite lets one transaction write at a time. A session that wants to write while another
holds the lock waits in SQLite's busy handler, which sleeps and retries with growing pauses
(up to 100 ms each): under the 1,000-device soak, a gateway poll's session touch waited up
to 930 ms behind the group writer, and every family's p99 with it. :class:`TurnSession`
takes the process's write turn (an asyncio lock, first come first served) just before its
first write (a DML statement, or a flush of pending changes) and gives it back when its
transaction ends, so writers queue in the event loop and each starts the moment the one
before it commits. Reads never take the turn. On PostgreSQL there is no turn to take.

A session marked read-only (:func:`read_only`) raises :class:`WouldWrite` where it would
have taken the turn, on either database: a poll can try the read first and start again as a
writer only when it turns out to need to write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

READ_ONLY = "read_only"


class WouldWrite(Exception):
    """A session marked read-only was about to write; nothing was written."""


@asynccontextmanager
async def read_only(session: AsyncSession) -> AsyncIterator[None]:
    """Inside the block ``session`` must not write (:class:`WouldWrite`); the block's end
    rolls its read back, and the session may write again after it."""
    session.info[READ_ONLY] = True
    try:
        yield
    finally:
        del session.info[READ_ONLY]
        await session.rollback()


class TurnSession(AsyncSession):
    """An AsyncSession that takes ``info["write_turn"]`` (if any) before writing."""

    _holding = False

    async def take_turn(self) -> None:
        """Wait for the process's write turn, unless this session already has it."""
        if self.info.get(READ_ONLY):
            raise WouldWrite
        turn: asyncio.Lock | None = self.info.get("write_turn")
        if turn is not None and not self._holding:
            await turn.acquire()
            self._holding = True

    def _give_turn(self) -> None:
        if self._holding:
            self._holding = False
            self.info["write_turn"].release()

    def _writes_pending(self) -> bool:
        # What autoflush would write before the next statement runs.
        return self.sync_session.autoflush and not self.sync_session._is_clean()

    async def _before(self, statement: Any = None) -> None:
        if self._holding or not ("write_turn" in self.info or self.info.get(READ_ONLY)):
            return
        if getattr(statement, "is_dml", False) or self._writes_pending():
            await self.take_turn()

    async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self._before(statement)
        return await super().execute(statement, *args, **kwargs)

    async def scalar(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self._before(statement)
        return await super().scalar(statement, *args, **kwargs)

    async def scalars(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        await self._before(statement)
        return await super().scalars(statement, *args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        await self._before()
        return await super().get(*args, **kwargs)

    async def flush(self, objects: Any = None) -> None:
        if not self.sync_session._is_clean():
            await self.take_turn()
        await super().flush(objects)

    async def commit(self) -> None:
        if not self.sync_session._is_clean():
            await self.take_turn()
        try:
            await super().commit()
        finally:
            self._give_turn()

    async def rollback(self) -> None:
        try:
            await super().rollback()
        finally:
            self._give_turn()

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            self._give_turn()
