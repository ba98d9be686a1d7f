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
from cloudlet.scale.service import NewRecord, Upload
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


async def test_concurrent_duplicates_and_device_state(scale: httpx.AsyncClient) -> None:
    """Uploads sharing a commit: duplicates stored once, the device keeps the latest facts."""
    template = load_fixture("seed001_torre_record")["request"]["json"]
    bodies = []
    for index in range(12):
        body = copy.deepcopy(template)
        body["bat"] = f"0.{index + 10}"
        body["list"][0]["timestamp"] += index % 3  # three distinct measurements
        bodies.append(body)
    answers = await asyncio.gather(*(scale.post("/lefu/wifi/torre/record", json=b) for b in bodies))
    assert {a.json()["errorCode"] for a in answers} == {0}
    async with services_of(scale).db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ScaleRecord)) == 3
        device = await session.scalar(select(ScaleDevice))
    assert device is not None
    # One of the uploads' batteries (on SQLite, in arrival order: the last one).
    assert device.battery in {b["bat"] for b in bodies}
    if services_of(scale).settings.is_sqlite:
        assert device.battery == "0.21"
    assert device.device_type == "LEFU-CF577"


async def test_uploads_survive_a_failing_neighbour(
    scale: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A group holding uploads and a failing write: retried alone, the uploads are stored."""
    services = services_of(scale)
    runtime = runtime_of(services)

    async def bad(session: AsyncSession) -> None:
        await session.execute(text("SELECT * FROM no_such_table"))

    def upload(index: int) -> Upload:
        record = NewRecord(
            member_id="m",
            account_id="a",
            timestamp_ms=1730893791000 + index,
            weight="70.1",
            weight_kg=70.1,
            heart_rate=None,
            scale_type=0,
            impedances=["500"],
            raw={"weight": 70.1},
        )
        return Upload(
            now=services.clock.now(),
            sn="SN1",
            mac="CF:E8:05:08:13:BA",
            protocol="torre",
            device_type="CF636",
            facts={"battery": "0.5"},
            records=[record],
            source="torre",
        )

    results = await asyncio.gather(
        *(runtime.write(upload(i)) for i in range(5)), runtime.write(bad), return_exceptions=True
    )
    assert results[:5] == [0] * 5  # stored, none of them a re-send
    assert isinstance(results[5], Exception)
    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ScaleRecord)) == 5
    if services.settings.is_sqlite:
        assert "group commit of 6 writes failed" in caplog.text
