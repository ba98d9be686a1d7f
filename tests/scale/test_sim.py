"""The simulator speaks the wire format the server accepts: every upload succeeds."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from cloudlet.scale.models import ScaleDevice, ScaleRecord
from cloudlet.scale.sim import build_parser, simulate
from tests.conftest import ClientFactory, services_of


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


async def test_only_acknowledged_uploads_count(make_client: ClientFactory) -> None:
    """Against a server that refuses every record, nothing is counted as uploaded."""
    refusing = await make_client("scale", scale={"max_body_bytes": 64})
    ticks: list[int] = []
    result = await simulate(refusing, devices=2, records=3, seed=3, on_upload=ticks.append)
    assert result.records == 0 and ticks == []
    assert result.failures >= 6


def test_every_cli_option_has_help_and_shows_its_default() -> None:
    parser = build_parser()
    text = parser.format_help()
    for action in parser._actions:
        if action.dest != "help":
            assert action.help, action.dest
    assert "(default: http://127.0.0.1:8000)" in text and "(default: 50)" in text
