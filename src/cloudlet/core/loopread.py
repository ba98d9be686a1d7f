"""SQLite reads on the event loop's thread, for device polls.

A device poll is one indexed read. Through aiosqlite it is a hand-off to the connection's
thread and back, and the way back waits for the GIL behind whatever the event loop is
running: an OTA check spent most of its time there (py-spy), not in SQLite, which answers
such a read in microseconds. Through SQLAlchemy's synchronous engine it was Core's
per-execution work (cache key, execution context, connection checkout) that dominated.
:class:`LoopReader` compiles each statement once, runs it on one read-only ``sqlite3``
connection and converts its columns with the same type processors SQLAlchemy would.
:class:`Statements` (the compiling) also serves PostgreSQL's reads through asyncpg.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Select

# A select of any columns (what ``Database.read_one`` takes).
AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


class Prepared(NamedTuple):
    """A statement compiled once for a driver: its SQL, its parameters in order (with the
    type processors SQLAlchemy would apply), and the maker of its result rows."""

    statement: AnySelect  # held: the id it is cached under stays its own
    sql: str
    binds: tuple[tuple[str, Any, Any], ...]  # name, default value, bind processor or None
    row: Callable[[Sequence[Any]], Any]

    def values(self, params: Mapping[str, Any]) -> list[Any]:
        values = []
        for name, default, process in self.binds:
            value = params.get(name, default)
            values.append(process(value) if process is not None else value)
        return values


class Statements:
    """Statements compiled once per dialect, kept by identity (they are module constants)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._prepared: dict[int, Prepared] = {}

    def get(self, statement: AnySelect) -> Prepared:
        prepared = self._prepared.get(id(statement))
        if prepared is None:
            prepared = self._prepared[id(statement)] = self._prepare(statement)
        return prepared

    def _prepare(self, statement: AnySelect) -> Prepared:
        dialect = self._dialect
        compiled = statement.compile(dialect=dialect)
        if compiled.positiontup is None or compiled.post_compile_params:
            raise ValueError("prepared reads need positional, non-expanding parameters")
        processors = compiled._bind_processors
        binds = tuple(
            (name, compiled.binds[name].effective_value, processors.get(name))
            for name in compiled.positiontup
        )
        columns = compiled._result_columns
        names = [column[0] for column in columns]
        converters = [column[3]._cached_result_processor(dialect, None) for column in columns]
        shape = NamedTuple("ReadRow", [(name, Any) for name in names])  # type: ignore[misc]

        def row(raw: Sequence[Any]) -> Any:
            return shape._make(
                convert(value) if convert is not None and value is not None else value
                for convert, value in zip(converters, raw, strict=True)
            )

        return Prepared(statement, str(compiled), binds, row)


class Busy(Exception):
    """SQLite would have to wait (a writer resetting the WAL): read the ordinary way."""


class LoopReader:
    """One read-only SQLite connection used from the event loop's thread."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._statements = Statements(dialect)
        self._connection: sqlite3.Connection | None = None

    def read(self, statement: AnySelect, params: Mapping[str, Any], *, many: bool) -> Any:
        """The first row of ``statement`` (None if none), or every row with ``many``, columns
        as attributes; raises :class:`Busy`."""
        prepared = self._statements.get(statement)
        try:
            cursor = self._open().execute(prepared.sql, prepared.values(params))
            if many:
                return [prepared.row(raw) for raw in cursor.fetchall()]
            found = cursor.fetchone()
        except sqlite3.OperationalError as exc:
            raise Busy(str(exc)) from exc
        return None if found is None else prepared.row(found)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            # Autocommit: every read is its own transaction and sees the latest commit.
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            # Nothing is written through this connection, and it never waits: a read that
            # would (rare in WAL) is done the ordinary way instead of blocking the loop.
            connection.execute("PRAGMA query_only=ON")
            connection.execute("PRAGMA busy_timeout=0")
            self._connection = connection
        return self._connection
