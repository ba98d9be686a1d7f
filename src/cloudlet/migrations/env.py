"""Alembic environment: async engine, every family's metadata, batch mode on SQLite."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from cloudlet.core.db import Base, import_all_models, make_engine

import_all_models()
target_metadata = Base.metadata
config = context.config


# Any constant: the advisory lock every Cloudlet migration run takes on PostgreSQL.
MIGRATION_LOCK_ID = 0x636C6F75


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Workers starting together: one migrates, the others wait, then find nothing to do.
        # Held until the commit after the migrations (Alembic joins this transaction).
        connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run()
