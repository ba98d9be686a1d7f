"""One writer per process for device writes of every family: group commit.

Every commit is made durable with an fsync (SQLite's, or PostgreSQL's WAL flush), and SQLite
runs one writer at a time; committing each device write alone caps a fleet at the disk's
fsync rate, and on SQLite two sessions that read then write fail at once
(SQLITE_BUSY_SNAPSHOT) instead of waiting. Here the writes that arrive while the previous
commit runs share the next one, and every caller gets its answer only after the commit that
holds its data. Jobs of a kind that can share statements (:class:`Together`, e.g. the scale
family's record uploads) run as one batch. If anything in a group fails, the group is rolled
back and each write retried alone, so one bad write fails only itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.db import Database

# Most writes one group commit carries.
MAX_GROUP = 256

log = logging.getLogger("cloudlet.writer")
T = TypeVar("T")
Job = Callable[[AsyncSession], Awaitable[Any]]


@runtime_checkable
class Together(Protocol):
    """A job whose kind stores many of itself with shared statements."""

    async def __call__(self, session: AsyncSession) -> Any: ...

    @classmethod
    async def together(cls, session: AsyncSession, jobs: Sequence[Any]) -> list[Any]:
        """Run ``jobs`` (all of this class) in ``session``; one result per job."""
        ...


_TOGETHER: dict[type, bool] = {}


def _stores_together(job: object) -> bool:
    """Whether ``job`` is :class:`Together`, decided once a class: a runtime-checkable
    Protocol's isinstance walks its members every time (2 % of a Torre upload, py-spy)."""
    kind = type(job)
    known = _TOGETHER.get(kind)
    if known is None:
        known = _TOGETHER[kind] = isinstance(job, Together)
    return known


class Writer:
    """The process's device writes, committed in groups while :meth:`start` ed; before that
    (or after :meth:`stop`) each write commits alone."""

    def __init__(self, db: Database, *, max_concurrent: int = 16) -> None:
        self._db = db
        # PostgreSQL without the group writer: a burst queues here, not in the pool.
        self._slots = asyncio.Semaphore(max(1, max_concurrent))
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        # Idempotent: a test may run the app's lifespan inside another (a live server).
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def write(self, job: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``job`` in a transaction and return its result once that is committed."""
        if self.running:
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self._queue.put_nowait((job, future))
            return await future
        async with self._slots, self.session() as session:
            result = await job(session)
            await session.commit()
        return result

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for a write transaction outside the groups (the caller commits); on
        SQLite it takes the process's write turn at once (core/writeturn.py), as the group
        commits do, and holds it until the transaction ends."""
        async with self._db.session() as session:
            await self._db.take_turn(session)
            yield session

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            if item is None:
                break
            group = [item]
            while len(group) < MAX_GROUP and not self._queue.empty():
                more = self._queue.get_nowait()
                if more is None:
                    stopping = True
                    break
                group.append(more)
            await self._commit(group)

    async def _commit(self, group: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        if len(group) > 1:
            try:
                results = await self._together([job for job, _ in group])
            except Exception:
                log.warning("group commit of %d writes failed; retrying alone", len(group))
            else:
                for (_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                return
        for job, future in group:
            await self._alone(job, future)

    async def _together(self, jobs: list[Job]) -> list[Any]:
        """Run a group in one transaction; jobs of a :class:`Together` kind share theirs."""
        results: list[Any] = [None] * len(jobs)
        kinds: dict[type, list[int]] = {}
        for index, job in enumerate(jobs):
            if _stores_together(job):
                kinds.setdefault(type(job), []).append(index)
        async with self.session() as session:
            for kind, indexes in kinds.items():
                batch = await kind.together(session, [jobs[i] for i in indexes])  # type: ignore[attr-defined]
                for index, result in zip(indexes, batch, strict=True):
                    results[index] = result
            batched = {i for indexes in kinds.values() for i in indexes}
            for index, job in enumerate(jobs):
                if index not in batched:
                    results[index] = await job(session)
            await session.commit()
        return results

    async def _alone(self, job: Job, future: asyncio.Future[Any]) -> None:
        try:
            async with self.session() as session:
                result = await job(session)
                await session.commit()
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)
