"""CLI progress: rich bars on a terminal, at most a line per tenth otherwise, off on request."""

from __future__ import annotations

import io

import pytest

from cloudlet.integrations.progress import progress
from cloudlet.scale.sim import simulate
from tests.conftest import ClientFactory


def test_plain_output_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUDLET_PROGRESS", raising=False)
    out = io.StringIO()
    with progress("records uploaded", 250, stream=out) as advance:
        for _ in range(250):
            advance(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "records uploaded: 25/250"
    assert lines[-1] == "records uploaded: 250/250"


def test_off_and_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setenv("CLOUDLET_PROGRESS", "0")
    with progress("devices", 5, stream=out) as advance:
        advance(5)
    assert out.getvalue() == ""
    monkeypatch.setenv("CLOUDLET_PROGRESS", "1")
    with progress("devices", 5, stream=out) as advance:
        advance(5)
    assert "devices" in out.getvalue() and "5/5" in out.getvalue()


async def test_scale_simulator_reports_each_upload(make_client: ClientFactory) -> None:
    client = await make_client("scale")
    done: list[int] = []
    result = await simulate(client, devices=3, records=2, seed=1, on_upload=done.append)
    assert result.failures == 0, result.errors
    assert sum(done) == result.records == 6
