"""The simulator speaks the wire format the server accepts: every upload succeeds."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from cloudlet.scale.models import ScaleDevice, ScaleRecord
from cloudlet.scale.sim import build_parser, simulate
from tests.conftest import services_of


async def test_simulated_scales_upload_everything(scale: httpx.AsyncClient) -> None:
    result = await simulate(
        scale, devices=6, records=5, concurrency=4, seed=7, now_s=lambda: 1730888100.0
    )
    assert result.failures == 0, result.errors
    assert result.records == 30
    async with services_of(scale).db.session() as session:
        devices = await session.scalar(select(func.count()).select_from(ScaleDevice))
        records = await session.scalar(select(func.count()).select_from(ScaleRecord))
        sources = set((await session.scalars(select(ScaleRecord.source))).all())
    assert (devices, records) == (6, 30)
    assert sources == {"torre", "v2", "v2-batch"}


async def test_simulator_under_prefix(scale: httpx.AsyncClient) -> None:
    result = await simulate(scale, devices=2, records=2, prefix="/devices/claim", seed=1)
    assert result.failures == 0, result.errors


def test_cli_arguments() -> None:
    args = build_parser().parse_args(["--url", "http://127.0.0.1:9", "--devices", "3"])
    assert (args.url, args.devices, args.records) == ("http://127.0.0.1:9", 3, 10)
