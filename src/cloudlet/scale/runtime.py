"""Long-lived objects of the scale family, kept in ``services.extras["scale"]``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.core.db import Database
from cloudlet.core.services import Services
from cloudlet.scale.config import ScaleSettings
from cloudlet.scale.decoders import ImpedanceDecoder, get_decoder
from cloudlet.scale.service import Upload, store_uploads

EXTRAS_KEY = "scale"
# Most device writes one group commit carries.
MAX_GROUP = 256

log = logging.getLogger("cloudlet.scale")
T = TypeVar("T")
Job = Callable[[AsyncSession], Awaitable[Any]]


class GroupCommitter:
    """One writer per process that commits the device writes waiting for it together.

    Every commit is made durable with an fsync (SQLite's, or PostgreSQL's WAL flush), and
    SQLite runs one writer at a time; committing each upload alone caps ingest at the disk's
    fsync rate. Here the uploads
    that arrived while the previous commit ran share the next one, and every scale is
    answered only after the commit that holds its data. If any write of a group fails, the
    group is rolled back and each write is retried alone, so one bad write fails only itself.
    """

    def __init__(
        self, db: Database, lock: asyncio.Lock, on_duplicates: Callable[[int], None]
    ) -> None:
        self._db = db
        self._lock = lock
        self._on_duplicates = on_duplicates
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future[Any]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="scale-group-commit")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task
        self._task = None

    async def submit(self, job: Job) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, future))
        return await future

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
        async with self._lock:
            if len(group) > 1:
                try:
                    results = await self._together(group)
                except Exception:
                    log.warning("group commit of %d writes failed; retrying alone", len(group))
                else:
                    for (_, future), result in zip(group, results, strict=True):
                        if not future.done():
                            future.set_result(result)
                    return
            for job, future in group:
                await self._alone(job, future)

    async def _together(self, group: list[tuple[Job, asyncio.Future[Any]]]) -> list[Any]:
        """Run a group in one transaction; record uploads share their statements."""
        uploads = [job for job, _ in group if isinstance(job, Upload)]
        async with self._db.session() as session:
            duplicates = await store_uploads(session, uploads) if uploads else 0
            results = [None if isinstance(job, Upload) else await job(session) for job, _ in group]
            await session.commit()
        self._on_duplicates(duplicates)
        return results

    async def _alone(self, job: Job, future: asyncio.Future[Any]) -> None:
        try:
            async with self._db.session() as session:
                result = await job(session)
                await session.commit()
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if isinstance(job, Upload) and isinstance(result, int):
            self._on_duplicates(result)
        if not future.done():
            future.set_result(result)


@dataclass
class ScaleRuntime:
    """The write path and decoder choice of one app."""

    settings: ScaleSettings
    db: Database
    # SQLite has one writer: a read-then-write transaction that loses the race fails at
    # once (SQLITE_BUSY_SNAPSHOT) instead of waiting, so writers queue here instead.
    serialise_writes: bool
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    committer: GroupCommitter | None = None
    write_slots: asyncio.Semaphore | None = None
    # Records answered "success" but not stored again because they were exact re-sends.
    duplicates: Counter | None = None

    def count_duplicates(self, count: int) -> None:
        if self.duplicates is not None and count > 0:
            self.duplicates.inc(count)

    def decoder_for(self, device_type: str) -> ImpedanceDecoder:
        return get_decoder(self.decoder_name_for(device_type))

    def decoder_name_for(self, device_type: str) -> str:
        return self.settings.impedance_decoders.get(
            device_type, self.settings.default_impedance_decoder
        )

    async def write(self, job: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``job`` in a transaction and commit it before returning its result."""
        if self.committer is not None and self.committer.running:
            result: T = await self.committer.submit(job)
            return result
        if self.write_slots is None:
            self.write_slots = asyncio.Semaphore(max(1, self.settings.max_concurrent_writes))
        async with self.write_slots, self.session_for_writing() as session:
            result = await job(session)
            await session.commit()
        if isinstance(job, Upload) and isinstance(result, int):
            self.count_duplicates(result)
        return result

    @asynccontextmanager
    async def session_for_writing(self) -> AsyncIterator[AsyncSession]:
        """A session for a write transaction (the caller commits), queued on SQLite."""
        if self.serialise_writes:
            async with self.write_lock, self.db.session() as session:
                yield session
        else:
            async with self.db.session() as session:
                yield session


def runtime_of(services: Services) -> ScaleRuntime:
    runtime = services.extras.get(EXTRAS_KEY)
    if runtime is None:
        runtime = ScaleRuntime(
            settings=services.settings.scale,
            db=services.db,
            serialise_writes=services.settings.is_sqlite,
            duplicates=Counter(
                "cloudlet_scale_duplicate_records",
                "Scale records answered success but not stored again (exact re-sends)",
                registry=services.metrics.registry,
            ),
        )
        services.extras[EXTRAS_KEY] = runtime
    assert isinstance(runtime, ScaleRuntime)
    return runtime


@asynccontextmanager
async def running(services: Services) -> AsyncIterator[ScaleRuntime]:
    """The family's lifespan: the group committer runs while the app does."""
    runtime = runtime_of(services)
    if runtime.settings.group_commit:
        runtime.committer = GroupCommitter(runtime.db, runtime.write_lock, runtime.count_duplicates)
        runtime.committer.start()
    try:
        yield runtime
    finally:
        if runtime.committer is not None:
            await runtime.committer.stop()
            runtime.committer = None


@asynccontextmanager
async def writing(services: Services) -> AsyncIterator[AsyncSession]:
    """A session for a write transaction (the caller commits), queued on SQLite."""
    async with runtime_of(services).session_for_writing() as session:
        yield session
