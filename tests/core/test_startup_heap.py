"""`cloudlet serve` leaves its startup heap out of the garbage collector's full passes."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from cloudlet.cli import _freeze_startup_heap


@dataclass
class FakeServer:
    started: bool = False
    should_exit: bool = False


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


async def test_the_heap_is_frozen_once_every_server_has_started(thawed: None) -> None:
    servers = [FakeServer(), FakeServer()]
    freezing = asyncio.ensure_future(_freeze_startup_heap(servers))
    await asyncio.sleep(0.1)
    servers[0].started = True
    await asyncio.sleep(0.1)
    assert gc.get_freeze_count() == 0  # one server still starting
    servers[1].started = True
    await asyncio.wait_for(freezing, 1)
    assert gc.get_freeze_count() > 10_000


async def test_a_server_that_fails_to_start_freezes_nothing(thawed: None) -> None:
    servers = [FakeServer(started=True), FakeServer(should_exit=True)]
    await asyncio.wait_for(_freeze_startup_heap(servers), 1)
    assert gc.get_freeze_count() == 0
