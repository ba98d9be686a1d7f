"""Workers started at the same moment on an empty database, with no ``cloudlet migrate``
first (``docker compose up --scale cloudlet=3`` does this): every one comes up, the schema
is made once, and exactly one of them creates and prints the first admin."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cloudlet.core.db import Database
from cloudlet.core.models import AdminUser
from tests.scaleout.conftest import (
    fresh_database,
    missing_requirement,
    start_workers,
    stop_workers,
    worker_env,
)

pytestmark = pytest.mark.skipif(
    missing_requirement() is not None, reason=f"scale-out fleet: {missing_requirement()}"
)

FIRST_ADMIN_LINE = "First start: created admin user 'admin'"


async def _admins(database_url: str) -> int:
    db = Database(database_url)
    try:
        async with db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(AdminUser)) or 0)
    finally:
        await db.dispose()


def test_workers_started_together_on_an_empty_database(tmp_path: Path) -> None:
    admin_url = os.environ["CLOUDLET_TEST_DATABASE_URL"]
    with fresh_database(admin_url, "fresh") as database_url:
        env = worker_env(
            database_url=database_url,
            mqtt_url=os.environ["CLOUDLET_TEST_MQTT_URL"],
            topic_root=f"fresh-{uuid.uuid4().hex[:10]}",
            data_dir=tmp_path / "data",
            public="127.0.0.1:8000",
        )
        workers = start_workers(env, tmp_path, count=3)
        try:
            admins = asyncio.run(_admins(database_url))
        finally:
            stop_workers(workers)
    assert admins == 1
    # Read after the workers exited, so their output is flushed.
    printed = [w.index for w in workers if FIRST_ADMIN_LINE in w.log.read_text()]
    assert len(printed) == 1, [w.log_tail() for w in workers]
