"""Every example body of seeds 000, 001 and lefu-endpoints.md, replayed: exact JSON and status."""

from __future__ import annotations

import httpx
import pytest

from cloudlet.core.clock import FrozenClock
from tests.scale.conftest import golden_names, load_fixture, prepare, send


@pytest.mark.parametrize("prefix", ["", "/devices/claim"])
@pytest.mark.parametrize("name", golden_names())
async def test_golden_exchange(
    scale: httpx.AsyncClient,
    admin: dict[str, str],
    clock: FrozenClock,
    name: str,
    prefix: str,
) -> None:
    fixture = load_fixture(name)
    await prepare(scale, clock, admin, fixture)
    answer = await send(scale, fixture["request"], prefix)
    assert answer.status_code == fixture["response"]["status"]
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == fixture["response"]["json"]
    # Key order too: scales parse these bodies by hand.
    assert list(answer.json()) == list(fixture["response"]["json"])


@pytest.mark.parametrize("name", golden_names())
async def test_golden_replay_is_idempotent(
    scale: httpx.AsyncClient, admin: dict[str, str], clock: FrozenClock, name: str
) -> None:
    """A scale that did not hear the answer sends the same body again and gets the same."""
    fixture = load_fixture(name)
    await prepare(scale, clock, admin, fixture)
    first = await send(scale, fixture["request"])
    second = await send(scale, fixture["request"])
    assert first.json() == second.json() == fixture["response"]["json"]
