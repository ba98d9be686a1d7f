"""SQLite through aiosqlite in one trip per statement, not four.

aiosqlite runs each connection's calls on a thread of its own; SQLAlchemy's adapter makes a
cursor, executes, fetches and closes the cursor as four calls, each a round trip to that
thread and back through the event loop. A device's OTA check (four indexed reads) spent more
time in those 18 hand-offs than in SQLite. :class:`OneTripCursor` does the four steps in
one function on the connection's thread. Everything else (transactions, errors, the pool,
server-side cursors for streaming) is SQLAlchemy's aiosqlite dialect unchanged.
"""

from __future__ import annotations

import collections
import sqlite3
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

Outcome = tuple[Any, list[Any], int, int | None]


def _run(conn: sqlite3.Connection, operation: str, parameters: Any) -> Outcome:
    cursor = conn.cursor()
    try:
        if parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _run_many(conn: sqlite3.Connection, operation: str, seq: Any) -> Outcome:
    cursor = conn.cursor()
    try:
        cursor.executemany(operation, seq)
        return None, [], cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor holding its results; no aiosqlite cursor behind it."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _async_soft_close(self) -> None:
        return None  # nothing open on the connection's thread

    def close(self) -> None:
        self._rows.clear()

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._one_trip(_run, operation, parameters)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._one_trip(_run_many, operation, seq_of_parameters)

    async def _one_trip(self, function: Any, operation: Any, parameters: Any) -> None:
        connection: Any = self._connection
        async with self._adapt_connection._execute_mutex:
            outcome: Outcome = await connection._execute(
                function, connection._conn, operation, parameters
            )
        self._description, rows, self._rowcount, self._lastrowid = outcome
        self._rows = collections.deque(rows)


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy's dialect sees it, handing out :class:`OneTripConnection`."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)


def one_trip_dbapi() -> OneTripDbapi:
    import aiosqlite

    return OneTripDbapi(aiosqlite, sqlite3)
