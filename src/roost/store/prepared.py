"""Core statements compiled once and executed on the DBAPI connection: the store's hot path.

SQLAlchemy builds and compiles the SQL (so it stays portable across dialects); ``Prepared``
keeps the compiled string per dialect and hands it straight to the driver. On this machine
``Connection.execute`` costs ~0.1 ms per statement (cache lookup, parameter processing, result
wrapping), several times what SQLite needs to run a primary-key upsert, and every event append
runs three statements. Only statements whose parameters are plain ``str``/``int``/``None``
belong here: no type processing is applied. The statements run inside the caller's
transaction, on the same connection, so they mix freely with ``Connection.execute``.

JSON columns are bound as UTF-8 ``bytes`` through ``utf8_text``: the store encodes JSON to bytes
anyway, and a ``str`` parameter would cost two more passes over it while holding the GIL (decoding
it to ``str``, then the driver encoding it back to UTF-8), 40-150 ms each for a 30 MiB part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    Connection,
    LargeBinary,
    Table,
    Text,
    and_,
    bindparam,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal


class _Compiled:
    __slots__ = ("defaults", "names", "positional", "sql")

    def __init__(self, stmt: ClauseElement, dialect: Dialect, keys: Sequence[str] | None) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys) if keys else None)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        # ``bind_names``: each bind parameter -> the name it has in the SQL string.
        in_sql = compiled.bind_names
        self.names: tuple[str, ...] = tuple(
            compiled.positiontup
            if compiled.positional and compiled.positiontup
            else dict.fromkeys(in_sql.values())
        )
        # Binds the caller does not pass are literals of the statement (``last_seq + 1``).
        self.defaults = {
            name: bind.value for bind, name in in_sql.items() if bind.value is not None
        }

    def args(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        defaults = self.defaults
        if self.positional:
            return [params[n] if n in params else defaults[n] for n in self.names]
        return {n: params[n] if n in params else defaults[n] for n in self.names}


class Prepared:
    """One Core statement, compiled on first use per dialect.

    Args:
        stmt: A Core ``select``/``insert``/``update``/``delete`` (built once, at import), or a
            function building it for a dialect name (for the constructs SQLAlchemy has only per
            dialect, such as ``INSERT … ON CONFLICT``).
        keys: For an ``insert`` without ``.values()``: the column names every call passes.

    ``execute`` returns the DBAPI cursor: rows are plain tuples in the statement's column order.
    """

    __slots__ = ("_by_dialect", "_keys", "_stmt")

    def __init__(
        self,
        stmt: ClauseElement | Callable[[str], ClauseElement],
        keys: Sequence[str] | None = None,
    ) -> None:
        self._stmt = stmt
        self._keys = tuple(keys) if keys else None
        self._by_dialect: dict[str, _Compiled] = {}

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """Run the statement with ``params`` (bind names → values) in ``conn``'s transaction.

        Raises:
            KeyError: A bind parameter without a value.
            sqlite3.Error or psycopg.Error (the driver's error): The statement failed.
        """
        dialect = conn.dialect
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            stmt = self._stmt if isinstance(self._stmt, ClauseElement) else self._stmt(dialect.name)
            compiled = self._by_dialect[dialect.name] = _Compiled(stmt, dialect, self._keys)
        raw = conn.connection.driver_connection
        assert raw is not None
        return raw.execute(compiled.sql, compiled.args(params or {}))

    def scalar(self, conn: Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None when there is no row."""
        row = self.execute(conn, params).fetchone()
        return None if row is None else row[0]


class _Utf8Text(ColumnElement[str]):
    """A text value bound as its UTF-8 bytes (see ``utf8_text``)."""

    inherit_cache = True
    type = Text()
    _traverse_internals = [("param", InternalTraversal.dp_clauseelement)]

    def __init__(self, param: BindParameter[Any]) -> None:
        self.param = param


@compiles(_Utf8Text)
def _utf8_text_sqlite(element: _Utf8Text, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite reads a BLOB cast to TEXT as text in the database encoding (UTF-8), byte for
    # byte ("CAST expressions", sqlite.org/lang_expr.html); the copy happens inside
    # sqlite3_step, which the driver runs without the GIL. The value is stored as TEXT.
    return f"CAST({compiler.process(element.param, **kw)} AS TEXT)"


@compiles(_Utf8Text, "postgresql")
def _utf8_text_postgresql(element: _Utf8Text, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL's CAST of bytea to text would give the "\x…" hex form instead.
    return f"convert_from({compiler.process(element.param, **kw)}, 'UTF8')"


def utf8_text(name: str) -> ColumnElement[str]:
    """A bind parameter ``name`` that takes UTF-8 ``bytes`` and stores them as text."""
    return _Utf8Text(bindparam(name))


class _Utf8Bytes(ColumnElement[bytes]):
    """A text column read as its UTF-8 bytes (see ``utf8_bytes``)."""

    inherit_cache = True
    type = LargeBinary()
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[str]) -> None:
        self.column = column


@compiles(_Utf8Bytes)
def _utf8_bytes_sqlite(element: _Utf8Bytes, compiler: SQLCompiler, **kw: Any) -> str:
    # A TEXT value cast to BLOB is its bytes in the database encoding (UTF-8), unchanged.
    return f"CAST({compiler.process(element.column, **kw)} AS BLOB)"


@compiles(_Utf8Bytes, "postgresql")
def _utf8_bytes_postgresql(element: _Utf8Bytes, compiler: SQLCompiler, **kw: Any) -> str:
    # A CAST to bytea would read backslashes in the text as escapes.
    return f"convert_to({compiler.process(element.column, **kw)}, 'UTF8')"


def utf8_bytes(column: ColumnElement[str]) -> ColumnElement[bytes]:
    """``column``'s text as UTF-8 ``bytes``: what the driver copies, rather than decoding it to
    ``str`` for the caller to encode again."""
    return _Utf8Bytes(column)


class Upsert:
    """Insert a whole row of ``table``, or overwrite every other column when ``key`` (its
    primary key) is taken. Every call passes every column, those named in ``utf8`` as UTF-8
    ``bytes`` (``utf8_text``).

    ``fixed`` names indexed columns a row normally keeps for its life (the session a message
    belongs to). SQLite rewrites a row's entry in an index whenever the index's column is in
    an ``UPDATE``'s ``SET``, even to the value it holds, so each overwrite would write a page
    of every such index to the WAL (issue #13). The upsert therefore leaves them out of its
    ``SET`` and overwrites only while they are unchanged (``WHERE`` each equals the new
    value, ``IS NOT DISTINCT FROM``); a row whose fixed column did change matches nothing
    there (no row counted) and is then overwritten whole by a plain ``UPDATE``.

    SQLAlchemy has ``INSERT … ON CONFLICT DO UPDATE`` only in each dialect's own ``insert``
    (SQLite's and PostgreSQL's take the same arguments), so the statement is built per dialect.
    """

    __slots__ = ("_key", "_upsert", "_whole")

    def __init__(
        self,
        table: Table,
        key: Column[Any],
        *,
        utf8: tuple[str, ...] = (),
        fixed: tuple[str, ...] = (),
    ) -> None:
        def bound(name: str) -> ColumnElement[Any]:
            return utf8_text(name) if name in utf8 else bindparam(name)

        values = {c.name: bound(c.name) for c in table.columns}
        others = [c.name for c in table.columns if c.name != key.name]
        changing = [n for n in others if n not in fixed]

        def build(dialect: str) -> ClauseElement:
            new = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
            new = new.values(values)
            unchanged = [table.c[n].is_not_distinct_from(new.excluded[n]) for n in fixed]
            return new.on_conflict_do_update(
                index_elements=[key],
                set_={n: new.excluded[n] for n in changing},
                where=and_(*unchanged) if unchanged else None,
            )

        self._key = key.name
        self._upsert = Prepared(build)
        self._whole = (
            Prepared(
                update(table)
                .where(key == bindparam("upsert_key"))
                .values({n: bound(n) for n in others})
            )
            if fixed
            else None
        )

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Store the row ``params`` (column name → value) in ``conn``'s transaction.

        Raises:
            KeyError: A column without a value.
            sqlite3.Error or psycopg.Error (the driver's error): The statement failed.
        """
        cursor = self._upsert.execute(conn, params)
        if self._whole is not None and cursor.rowcount == 0:
            self._whole.execute(conn, {**params, "upsert_key": params[self._key]})
