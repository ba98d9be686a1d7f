"""One injectable clock, so tests can travel through token expiries and schedules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in UTC."""

    def now(self) -> datetime: ...

    def timestamp(self) -> float: ...

    def millis(self) -> int: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()

    def millis(self) -> int:
        return time.time_ns() // 1_000_000


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | float) -> None:
        self._t = start.timestamp() if isinstance(start, datetime) else float(start)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, UTC)

    def timestamp(self) -> float:
        return self._t

    def millis(self) -> int:
        return round(self._t * 1000)

    def advance(self, seconds: float = 0.0, *, ms: float = 0.0) -> None:
        self._t += seconds + ms / 1000.0

    def set(self, when: datetime | float) -> None:
        self._t = when.timestamp() if isinstance(when, datetime) else float(when)

    def travel(self, delta: timedelta) -> None:
        self._t += delta.total_seconds()
