"""SQLite writers of one process take turns in the event loop (core/writeturn.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, update

from cloudlet.core.db import Database
from cloudlet.core.models import AdminLoginFailure, AdminUser
from cloudlet.core.writeturn import WouldWrite, read_only


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    await database.create_all()
    yield database
    await database.dispose()


def failure(key: str) -> AdminLoginFailure:
    return AdminLoginFailure(key=key, failures=1, window_start_ms=0, locked_until_ms=0)


async def test_a_second_writer_starts_as_soon_as_the_first_commits(db: Database) -> None:
    """The second writer waits in the event loop, not in SQLite's busy handler (whose
    sleeps grow to 100 ms): its INSERT runs the moment the first one commits."""
    first_wrote = asyncio.Event()
    committed_at: list[float] = []
    inserted_at: list[float] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        if statement.startswith("INSERT") and "b" in list(params or ()):
            inserted_at.append(time.perf_counter())

    async def first() -> None:
        async with db.session() as session:
            session.add(failure("a"))
            await session.flush()
            first_wrote.set()
            await asyncio.sleep(0.35)  # a long transaction: holds SQLite's write lock
            await session.commit()
            committed_at.append(time.perf_counter())

    async def second() -> None:
        await first_wrote.wait()
        async with db.session() as session:
            session.add(failure("b"))
            await session.commit()

    event.listen(db.engine.sync_engine, "after_cursor_execute", record)
    try:
        await asyncio.gather(first(), second())
    finally:
        event.remove(db.engine.sync_engine, "after_cursor_execute", record)
    assert inserted_at[0] - committed_at[0] < 0.04
    async with db.session() as session:
        keys = set(await session.scalars(select(AdminLoginFailure.key)))
    assert keys == {"a", "b"}


async def test_reads_never_wait_for_a_writer(db: Database) -> None:
    async with db.session() as writer:
        writer.add(AdminUser(username="u", password_hash="x", created_at=datetime.now(UTC)))
        await writer.flush()  # holds the turn
        async with db.session() as reader:
            started = time.perf_counter()
            assert list(await reader.scalars(select(AdminUser))) == []  # not committed yet
            assert time.perf_counter() - started < 0.05
        await writer.commit()


async def test_the_turn_is_given_back_on_rollback_close_and_errors(db: Database) -> None:
    async with db.session() as session:
        await session.execute(update(AdminUser).values(password_hash="y"))  # takes the turn
        await session.rollback()
    async with db.session() as session:
        session.add(failure("c"))
        await session.flush()
    # closed without commit: the turn came back with the close
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            session.add(failure("d"))
            await session.flush()
            raise RuntimeError("the request failed")
    async with db.session() as session:
        session.add(failure("e"))
        await asyncio.wait_for(session.commit(), 1)
    async with db.session() as session:
        assert set(await session.scalars(select(AdminLoginFailure.key))) == {"e"}


async def test_ten_concurrent_writers_all_commit(db: Database) -> None:
    async def write(n: int) -> None:
        async with db.session() as session:
            existing = await session.scalar(select(AdminLoginFailure).limit(1))
            session.add(failure(f"k{n}"))
            if existing is not None:
                existing.failures += 1
            await session.commit()

    await asyncio.wait_for(asyncio.gather(*(write(n) for n in range(10))), 10)
    async with db.session() as session:
        assert len(list(await session.scalars(select(AdminLoginFailure)))) == 10


@pytest.mark.parametrize("how", ["add and commit", "flush", "UPDATE statement", "autoflush"])
async def test_a_read_only_session_refuses_to_write_and_writes_nothing(
    db: Database, how: str
) -> None:
    async with db.session() as session:
        session.add(failure("kept"))
        await session.commit()
    async with db.session() as session:
        with pytest.raises(WouldWrite):
            async with read_only(session):
                assert (await session.scalars(select(AdminLoginFailure.key))).all() == ["kept"]
                if how == "UPDATE statement":
                    await session.execute(update(AdminLoginFailure).values(failures=2))
                elif how == "autoflush":
                    (await session.scalars(select(AdminLoginFailure))).one().failures = 3
                    await session.scalars(select(AdminLoginFailure.key))
                else:
                    session.add(failure("new"))
                    await (session.commit() if how == "add and commit" else session.flush())
        # the same session may then write
        await session.execute(update(AdminLoginFailure).values(failures=4))
        await session.commit()
    async with db.session() as session:
        found = (await session.scalars(select(AdminLoginFailure))).all()
        assert [(f.key, f.failures) for f in found] == [("kept", 4)]
