"""A fault repeated under load is one traceback a minute, with a count of the rest."""

from __future__ import annotations

import logging

import pytest

from cloudlet.core.observability import FaultLog


def fail(kind: type[Exception]) -> None:
    raise kind("database unreachable")


def test_one_traceback_per_kind_per_period(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    faults = FaultLog(logging.getLogger("test.faults"), every_s=60, clock=lambda: now[0])
    caplog.set_level(logging.ERROR, logger="test.faults")
    for second in range(100):  # 100 failing requests in 50 s
        now[0] = second / 2
        try:
            fail(ConnectionError)
        except ConnectionError:
            faults.exception("unhandled error on %s", "/x")
    try:
        fail(ValueError)  # another kind is told at once
    except ValueError:
        faults.exception("unhandled error on %s", "/y")
    now[0] = 61
    try:
        fail(ConnectionError)
    except ConnectionError:
        faults.exception("unhandled error on %s", "/x")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "unhandled error on /x",
        "unhandled error on /y",
        "unhandled error on /x (99 more like it in the last 60 s were not logged)",
    ]
    assert all(r.exc_info for r in caplog.records)
