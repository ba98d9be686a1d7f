"""Alembic migrations build exactly the schema the models describe, on this run's database."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from cloudlet.core.db import Base, Database, import_all_models
from cloudlet.core.migrate import upgrade
from cloudlet.core.settings import Settings


def test_migrations_match_models(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k")
    upgrade(settings)
    import_all_models()

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))

    async def run() -> list[object]:
        db = Database(settings.resolved_database_url)
        async with db.engine.connect() as conn:
            result = await conn.run_sync(diff)
        await db.dispose()
        return result

    assert asyncio.run(run()) == []
