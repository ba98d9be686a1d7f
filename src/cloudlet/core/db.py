"""SQLAlchemy 2 async: one declarative base, one engine per process, sessions per request."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, MetaData, delete, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError, InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from cloudlet.core.loopread import AnySelect, Busy, LoopReader, Statements
from cloudlet.core.sqlite import one_trip_dbapi
from cloudlet.core.writeturn import TurnSession

# Stable constraint names so Alembic migrations match on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Every table of every family hangs off this metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; synchronous=FULL makes a commit durable
    # before the device is answered; busy_timeout rides out short writer contention.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def json_text(value: Any) -> str:
    """JSON columns as text: orjson (a device's raw record is written on every upload),
    the standard library for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def make_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine for ``url`` with the pragmas and pool sizes Cloudlet relies on."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            echo=echo,
            json_serializer=json_text,
            json_deserializer=orjson.loads,
            module=one_trip_dbapi(),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=20,
        max_overflow=20,
        pool_timeout=10,
        json_serializer=json_text,
        json_deserializer=orjson.loads,
    )
    _check_on_checkout(engine)
    return engine


# A pooled connection unused this long is pinged (pre-ping's round trips) before its next use.
IDLE_PING_S = 10.0


def _check_on_checkout(engine: AsyncEngine) -> None:
    """What ``pool_pre_ping`` did, without its three round trips (BEGIN, ``;``, ROLLBACK) on
    every checkout, which were most of a poll's read: a connection the server closed
    (a restart, ``pg_terminate_backend``) is seen closed by asyncpg at once and replaced;
    one that sat idle for IDLE_PING_S is pinged first, for a peer that vanished without
    closing it. A failed ping replaces every pooled connection, as pre-ping's did."""
    pool = engine.sync_engine.pool

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")
        idle_since = record.info.pop("idle_since", None)
        if idle_since is not None and time.monotonic() - idle_since > IDLE_PING_S:
            try:
                dbapi_connection.ping()
            except Exception as exc:
                raise InvalidatePoolError(f"ping after {IDLE_PING_S:g} s idle failed") from exc

    event.listen(pool, "checkin", checked_in)
    event.listen(pool, "checkout", checked_out)


# Reads without a session (read_one) in flight at once on PostgreSQL; the rest wait in order.
READ_SLOTS = 16


class Database:
    """The engine and session factory of one process."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        # SQLite has one writer at a time: this process's sessions take turns for it.
        self._write_turn = asyncio.Lock() if url.startswith("sqlite") else None
        self.sessionmaker = async_sessionmaker(
            self.engine,
            class_=TurnSession,
            expire_on_commit=False,
            info={"write_turn": self._write_turn} if self._write_turn is not None else None,
        )
        self._loop_reader = (
            LoopReader(url.removeprefix("sqlite+aiosqlite:///"), self.engine.dialect)
            if url.startswith("sqlite+aiosqlite:///")
            else None
        )
        self._statements = (
            Statements(self.engine.dialect) if self.engine.dialect.driver == "asyncpg" else None
        )
        # PostgreSQL: a poll's reads at once, below the pool's 20 kept connections. Past
        # 20 the pool opens overflow connections and closes each on its return: under 32
        # polls at once most reads paid for a new connection (TLS attempt, login, every
        # statement prepared again), and the OTA check ran at ~1,800/s instead of ~2,260/s.
        self._read_slots = asyncio.Semaphore(READ_SLOTS)

    async def read_one(self, statement: AnySelect, params: dict[str, Any]) -> Any | None:
        """The first row of a read-only statement (columns as attributes), without a
        session: a device poll's read.

        On SQLite it runs on the event loop's thread (core/loopread.py: an indexed read takes
        microseconds, the hand-off to aiosqlite's thread and back took far longer); on
        PostgreSQL it is one round trip.
        """
        return await self._read(statement, params, many=False)

    async def read_all(self, statement: AnySelect, params: dict[str, Any]) -> list[Any]:
        """Every row of a read-only statement, read as :meth:`read_one` reads the first: a
        poll whose answer is a few rows (a scale's firmware offer)."""
        rows: list[Any] = await self._read(statement, params, many=True)
        return rows

    async def _read(self, statement: AnySelect, params: dict[str, Any], *, many: bool) -> Any:
        if self._loop_reader is not None:
            try:
                return self._loop_reader.read(statement, params, many=many)
            except Busy:
                pass  # the ordinary way below waits for the writer
        if self._statements is not None:
            # asyncpg directly, with the statement compiled once (asyncpg prepares it once
            # per connection): SQLAlchemy's per-execution work was most of such a read.
            prepared = self._statements.get(statement)
            values = prepared.values(params)
            async with self._read_slots, self.engine.connect() as connection:
                driver: Any = (await connection.get_raw_connection()).driver_connection
                if many:
                    return [prepared.row(raw) for raw in await driver.fetch(prepared.sql, *values)]
                found = await driver.fetchrow(prepared.sql, *values)
            return None if found is None else prepared.row(found)
        async with self.engine.connect() as connection:
            result = await connection.execute(statement, params)
            return list(result.all()) if many else result.first()

    async def take_turn(self, session: AsyncSession) -> None:
        """Have ``session`` take the process's write turn now (SQLite), not at its first
        write: for transactions that read then write and must not interleave."""
        if isinstance(session, TurnSession):
            await session.take_turn()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that rolls back on error; callers commit explicitly."""
        async with self.sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise

    async def create_all(self) -> None:
        """Create every table (tests and first start without Alembic)."""
        import_all_models()
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._loop_reader is not None:
            self._loop_reader.close()


def import_all_models() -> None:
    """Import every family's models so Base.metadata knows all tables."""
    import importlib

    importlib.import_module("cloudlet.core.models")
    for family in ("scale", "irrigation", "ota", "gateway"):
        try:
            importlib.import_module(f"cloudlet.{family}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"cloudlet.{family}.models":
                raise


async def delete_where(session: AsyncSession, model: type[Base], *conditions: Any) -> int:
    """``DELETE FROM model WHERE conditions``; how many rows went."""
    result = await session.execute(delete(model).where(*conditions))
    return int(getattr(result, "rowcount", 0) or 0)


async def insert_if_absent(session: AsyncSession, model: type[Base], **values: Any) -> None:
    """INSERT a row unless its key exists: one statement, safe when workers race."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await session.execute(pg_insert(model).values(**values).on_conflict_do_nothing())
        return
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    await session.execute(sqlite_insert(model).values(**values).on_conflict_do_nothing())
