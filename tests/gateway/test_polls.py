"""The admin UI's status polls: read without the simulated world's lock, and write nothing
but the session's idle timer; a poll that needs a write starts again under the lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from cloudlet.core.clock import FrozenClock
from tests.conftest import services_of
from tests.gateway.conftest import Box, joiner_waiting

POLLED = (
    "/otbr/get_status",
    "/sys/get_status",
    "/sys/get_info",
    "/eth/get_status",
    "/wifi/get_status",
    "/otbr/get_commissioning_status",
    "/otbr/get_joiner_list",
    "/otbr/get_bbr_status",
    "/sys/get_time_config",
    "/sys/get_log",
)
WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def statements_sent(box: Box) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the block runs, as sent."""
    engine = services_of(box.client).db.engine.sync_engine
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def writes(sent: list[str]) -> list[str]:
    return [s for s in sent if s.upper().startswith(WRITES)]


async def test_a_poll_that_changes_nothing_writes_only_its_session_timer(box: Box) -> None:
    await box.ok("POST", "/otbr/start")
    for path in POLLED:  # a first round may create default rows
        await box.ok("GET", path)
    with statements_sent(box) as sent:
        for path in POLLED:
            await box.ok("GET", path)
    written = writes(sent)
    assert len(written) == len(POLLED)
    assert all(s.startswith("UPDATE gateway_session SET last_used_ms=") for s in written)
    # Nor does it lock the simulated world (SQLite: a no-op UPDATE; PostgreSQL: FOR UPDATE).
    assert not [s for s in sent if "gateway_sim_world" in s and "FOR UPDATE" in s.upper()]


async def test_a_poll_that_moves_the_simulation_stores_the_move(
    box: Box, clock: FrozenClock
) -> None:
    """A joiner's progress is stored by the poll that sees it: the read-only try meets the
    write, and the poll runs again under the world's lock and commits it."""
    await joiner_waiting(box, box)
    clock.advance(2)
    with statements_sent(box) as sent:
        joined = await box.ok("GET", "/otbr/get_joiner_list")
    assert joined["DeviceList"][0]["Status"] == 2
    assert [s for s in writes(sent) if not s.startswith("UPDATE gateway_session")]
    # Committed: the next poll finds it stored and writes nothing more.
    with statements_sent(box) as sent:
        again = await box.ok("GET", "/otbr/get_joiner_list")
    assert again == joined
    assert all(s.startswith("UPDATE gateway_session") for s in writes(sent))
