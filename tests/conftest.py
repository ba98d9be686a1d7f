"""Fixtures every family's tests share: fixed clock, settings, database, app clients.

The suite runs on SQLite by default. With ``CLOUDLET_TEST_DATABASE_URL`` set to a
PostgreSQL URL (a role allowed to create databases), the same suite runs on a fresh
PostgreSQL database made for this test process.
"""

from __future__ import annotations

import asyncio
import gc
import os
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url

from cloudlet.app import create_app
from cloudlet.core.auth import create_admin, issue_token
from cloudlet.core.clock import FrozenClock
from cloudlet.core.db import Base, Database, import_all_models
from cloudlet.core.services import Services
from cloudlet.core.settings import Settings

# The suite never reaches the internet: irrigation's weather feed (Open-Meteo by default)
# stays offline unless a test points it at its own local server. Subprocess servers inherit it.
os.environ.setdefault("CLOUDLET_IRRIGATION__WEATHER_SOURCE", "offline")
# Every `cloudlet serve` a test starts leaves the fixed ports alone (the suite must pass while
# `make serve` runs beside it): the OTBR REST API's 8081 off, the embedded brokers on free ports.
os.environ.setdefault("CLOUDLET_GATEWAY__OTBR_REST_PORT", "0")
os.environ.setdefault("CLOUDLET_IRRIGATION__EMBEDDED_MQTT_PORT", "0")
os.environ.setdefault("CLOUDLET_HOMEASSISTANT__EMBEDDED_MQTT_PORT", "0")

# The instant of the Lefu seed examples (nowTime 1730888100229), so golden bodies match.
SEED_INSTANT_MS = 1730888100229
TEST_SECRET = "test-secret-key"


async def _admin_execute(admin_url: str, statement: str) -> None:
    import asyncpg

    url = make_url(admin_url).set(drivername="postgresql")
    conn = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this process, or None on SQLite runs."""
    admin_url = os.environ.get("CLOUDLET_TEST_DATABASE_URL")
    if not admin_url:
        yield None
        return
    name = f"cloudlet_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin_execute(admin_url, f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    async def create_schema() -> None:
        db = Database(url)
        await db.create_all()
        await db.dispose()

    asyncio.run(create_schema())
    try:
        yield url
    finally:
        asyncio.run(_admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Everything imported for the run lives to its end: out of the collector's way, so a
    full collection scans only what tests create."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_abandoned_sockets(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, with its event loop closed, collect what it abandoned.

    amqtt's broker (embedded by irrigation and the Home Assistant bridge) can leave a
    vanished client's accepted socket to the garbage collector; collected later, its
    ResourceWarning would fail whichever test happened to run then. Collected here, it is
    attributed to no one (docs/reliability.md, known limits)."""
    yield
    if not BROKER_TESTS.intersection(Path(str(request.node.path)).parts):
        return  # a full collection costs ~0.4 s: only where a broker runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


BROKER_TESTS = frozenset({"irrigation", "integrations"})


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(SEED_INSTANT_MS / 1000)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def database_url(postgres_url: str | None, data_dir: Path) -> str:
    """An empty database with every table: a new SQLite file, or the PostgreSQL one truncated."""
    if postgres_url is None:
        data_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite+aiosqlite:///{data_dir / 'cloudlet.db'}"
        db = Database(url)
        await db.create_all()
        await db.dispose()
        return url
    import_all_models()
    db = Database(postgres_url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await db.dispose()
    return postgres_url


@pytest.fixture
def settings_factory(data_dir: Path, database_url: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": database_url,
            "secret_key": TEST_SECRET,
        }
        values.update(overrides)
        return Settings(**values)

    return make


class ClientFactory(Protocol):
    def __call__(self, *families: str, **overrides: Any) -> Awaitable[httpx.AsyncClient]: ...


@pytest.fixture
async def make_client(
    settings_factory: Callable[..., Settings], clock: FrozenClock
) -> AsyncIterator[ClientFactory]:
    """Start an app with only the named families (all when none) and return a client to it.

    The app is reachable as ``client.app`` is not: use ``app_of(client)``.
    """
    async with AsyncExitStack() as stack:

        async def make(*families: str, **overrides: Any) -> httpx.AsyncClient:
            if families:
                overrides["families"] = list(families)
            app = create_app(settings_factory(**overrides), clock=clock)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://testserver"
            )
            await stack.enter_async_context(client)
            _APPS[id(client)] = app
            # Dropped with the test: kept, every app of the run stayed in memory (1 GB by
            # the irrigation tests, whose garbage collections then took seconds each).
            stack.callback(_APPS.pop, id(client), None)
            return client

        yield make


_APPS: dict[int, FastAPI] = {}


def app_of(client: httpx.AsyncClient) -> FastAPI:
    return _APPS[id(client)]


def services_of(client: httpx.AsyncClient) -> Services:
    services: Services = app_of(client).state.services
    return services


async def admin_headers(client: httpx.AsyncClient, username: str = "admin") -> dict[str, str]:
    """Create an admin user and return headers carrying a fresh management token."""
    services = services_of(client)
    async with services.db.session() as session:
        user = await create_admin(
            session, clock=services.clock, username=username, password="Secret123"
        )
        token = await issue_token(session, clock=services.clock, user=user)
        await session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seed_time() -> datetime:
    return datetime.fromtimestamp(SEED_INSTANT_MS / 1000, UTC)


@contextmanager
def recorded_writes(engine: Engine) -> Iterator[list[str]]:
    """The INSERT, UPDATE and DELETE statements ``engine`` runs inside the block."""
    writes: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield writes
    finally:
        event.remove(engine, "before_cursor_execute", record)
