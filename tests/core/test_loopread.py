"""``Database.read_one`` gives what SQLAlchemy gives: SQLite's read on the event loop's
thread, PostgreSQL's straight through asyncpg (core/loopread.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select, text

from cloudlet.core.db import READ_SLOTS, Database
from cloudlet.core.loopread import Busy, LoopReader
from cloudlet.core.models import AdminUser, ApiToken

CREATED = datetime(2026, 12, 7, 4, 30, 15, 123456, tzinfo=UTC)
TOKEN_ROW = (
    select(
        ApiToken.id,
        ApiToken.name,
        ApiToken.expires_at,
        ApiToken.created_at,
        AdminUser.username,
        (ApiToken.expires_at.is_(None)).label("endless"),
    )
    .join(AdminUser, AdminUser.id == ApiToken.user_id)
    .where(ApiToken.digest == bindparam("digest"))
)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    async with database.session() as session:
        session.add(AdminUser(id=1, username="ada", password_hash="x", created_at=CREATED))
        await session.flush()
        session.add(ApiToken(digest="d1", user_id=1, name="", created_at=CREATED))
        session.add(
            ApiToken(digest="d2", user_id=1, name="ci", created_at=CREATED, expires_at=CREATED)
        )
        await session.commit()
    yield database
    await database.dispose()


async def through_sqlalchemy(db: Database, params: dict[str, Any]) -> Any:
    async with db.engine.connect() as connection:
        return (await connection.execute(TOKEN_ROW, params)).first()


@pytest.mark.parametrize("digest", ["d1", "d2", "nobody"])
async def test_the_loop_read_gives_sqlalchemys_row(db: Database, digest: str) -> None:
    expected = await through_sqlalchemy(db, {"digest": digest})
    got = await db.read_one(TOKEN_ROW, {"digest": digest})
    if expected is None:
        assert got is None
        return
    assert tuple(got) == tuple(expected)
    assert got._fields == tuple(expected._fields)
    assert got.created_at == CREATED and got.created_at.tzinfo is not None
    assert got.endless == (digest == "d1")


USER_TOKENS = (
    select(ApiToken.name, ApiToken.expires_at, ApiToken.created_at)
    .where(ApiToken.user_id == bindparam("user"))
    .order_by(ApiToken.digest)
)


@pytest.mark.parametrize("user", [1, 2])
async def test_read_all_gives_sqlalchemys_rows(db: Database, user: int) -> None:
    async with db.engine.connect() as connection:
        expected = (await connection.execute(USER_TOKENS, {"user": user})).all()
    got = await db.read_all(USER_TOKENS, {"user": user})
    assert [tuple(row) for row in got] == [tuple(row) for row in expected]
    assert len(got) == (2 if user == 1 else 0)
    assert all(row.created_at == CREATED and row.created_at.tzinfo is not None for row in got)


def loop_reader(db: Database) -> LoopReader:
    if db._loop_reader is None:
        pytest.skip("SQLite's loop reader")
    return db._loop_reader


async def test_a_busy_read_is_done_the_ordinary_way(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def busy(*_args: Any, **_kwargs: Any) -> None:
        raise Busy("database is locked")

    monkeypatch.setattr(loop_reader(db), "read", busy)
    got = await db.read_one(TOKEN_ROW, {"digest": "d2"})
    assert got is not None and got.name == "ci" and got.expires_at == CREATED
    assert [row.name for row in await db.read_all(USER_TOKENS, {"user": 1})] == ["", "ci"]


async def test_a_write_through_the_read_connection_is_refused(db: Database) -> None:
    reader = loop_reader(db)
    await db.read_one(TOKEN_ROW, {"digest": "d1"})
    with pytest.raises(Exception, match="readonly"):
        reader._open().execute("DELETE FROM core_api_token")


async def test_an_expanding_parameter_is_refused(db: Database) -> None:
    statement = select(ApiToken.id).where(ApiToken.digest.in_(["d1", "d2"]))
    with pytest.raises(ValueError, match="non-expanding"):
        await db.read_one(statement, {})


def postgres_only(db: Database) -> None:
    if db._statements is None:
        pytest.skip("PostgreSQL's pool")


async def test_many_reads_at_once_keep_to_the_pools_kept_connections(db: Database) -> None:
    """64 polls' reads at once open at most READ_SLOTS connections: past the pool's 20 each
    read would open an overflow connection and close it again (a login per read)."""
    postgres_only(db)
    await db.engine.dispose()  # start from an empty pool
    opened: list[object] = []
    event.listen(db.engine.sync_engine.pool, "connect", lambda conn, _rec: opened.append(conn))
    rows = await asyncio.gather(*(db.read_one(TOKEN_ROW, {"digest": "d1"}) for _ in range(64)))
    assert all(row is not None and row.name == "" for row in rows)
    assert 1 <= len(opened) <= READ_SLOTS < 20


async def test_a_connection_the_server_ended_is_replaced_before_use(db: Database) -> None:
    """A restart or ``pg_terminate_backend`` closes pooled connections; asyncpg sees each
    closed at once, and the checkout replaces it instead of failing the read."""
    postgres_only(db)
    await asyncio.gather(*(db.read_one(TOKEN_ROW, {"digest": "d1"}) for _ in range(8)))
    async with db.engine.connect() as connection:
        others = text(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND usename = current_user AND application_name = ''"
        )
        ended = (await connection.execute(others)).scalars().all()
        for pid in ended:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        for _ in range(100):  # the backends exit a moment after the signal
            if not (await connection.execute(others)).first():
                break
            await asyncio.sleep(0.01)
        await connection.rollback()
    assert ended
    await asyncio.sleep(0.05)  # asyncpg reads each closed socket's end
    rows = await asyncio.gather(*(db.read_one(TOKEN_ROW, {"digest": "d1"}) for _ in range(8)))
    assert all(row is not None and row.name == "" for row in rows)


@pytest.mark.parametrize("idle_ping_s", [0.0, 3600.0])
async def test_only_a_connection_idle_past_the_limit_is_pinged(
    db: Database, monkeypatch: pytest.MonkeyPatch, idle_ping_s: float
) -> None:
    """A ping that fails (a peer gone without closing the socket) replaces the connection;
    a connection used within the limit is not pinged at all."""
    postgres_only(db)
    await db.read_one(TOKEN_ROW, {"digest": "d1"})
    monkeypatch.setattr("cloudlet.core.db.IDLE_PING_S", idle_ping_s)
    pings: list[object] = []

    def dead_peer(connection: object) -> None:
        pings.append(connection)
        raise ConnectionError("no answer")

    async with db.engine.connect() as connection:
        adapter = type((await connection.get_raw_connection()).dbapi_connection)
    monkeypatch.setattr(adapter, "ping", dead_peer)
    row = await db.read_one(TOKEN_ROW, {"digest": "d2"})
    assert row is not None and row.name == "ci"
    assert len(pings) == (1 if idle_ping_s == 0.0 else 0)
