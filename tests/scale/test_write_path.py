"""Concurrent uploads: all durable, none lost; a failing write fails only itself."""

from __future__ import annotations

import asyncio
import copy

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.scale.models import ScaleDevice, ScaleRecord
from cloudlet.scale.runtime import runtime_of
from tests.conftest import services_of
from tests.scale.conftest import load_fixture


async def test_concurrent_uploads_are_all_stored(scale: httpx.AsyncClient) -> None:
    template = load_fixture("seed001_torre_record")["request"]["json"]

    async def upload(index: int) -> int:
        body = copy.deepcopy(template)
        body["sn"] = f"SN{index % 7}"
        body["list"][0]["timestamp"] += index
        answer = await scale.post("/lefu/wifi/torre/record", json=body)
        return int(answer.json()["errorCode"])

    codes = await asyncio.gather(*(upload(i) for i in range(120)))
    assert set(codes) == {0}
    async with services_of(scale).db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ScaleRecord)) == 120
        assert await session.scalar(select(func.count()).select_from(ScaleDevice)) == 7


async def test_failing_write_fails_alone(scale: httpx.AsyncClient) -> None:
    runtime = runtime_of(services_of(scale))

    async def good(session: AsyncSession) -> str:
        await session.execute(text("SELECT 1"))
        return "ok"

    async def bad(session: AsyncSession) -> str:
        await session.execute(text("SELECT * FROM no_such_table"))
        return "never"

    results = await asyncio.gather(
        *(runtime.write(bad if i == 3 else good) for i in range(8)), return_exceptions=True
    )
    assert [r == "ok" for r in results] == [True, True, True, False, True, True, True, True]
    with pytest.raises(Exception, match="no_such_table"):
        await runtime.write(bad)
