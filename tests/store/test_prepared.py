"""``Prepared``: Core statements compiled once, run on the driver connection."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Connection, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql

from roost.store.database import Database
from roost.store.event_log import Tx
from roost.store.prepared import Prepared, Upsert, _Compiled
from roost.store.schema import session, session_head

pytestmark = pytest.mark.anyio

_INSERT = Prepared(insert(session_head), keys=("session_id", "last_seq"))
_BUMP = Prepared(
    update(session_head)
    .where(session_head.c.session_id == bindparam("sid"))
    .values(last_seq=session_head.c.last_seq + 1)
    .returning(session_head.c.last_seq)
)
_GET = Prepared(
    select(session_head.c.last_seq).where(session_head.c.session_id == bindparam("sid"))
)


async def test_runs_inside_the_callers_transaction_with_literals_filled_in(db: Database) -> None:
    def write(tx: object) -> tuple[int, int]:
        conn = tx.conn  # type: ignore[attr-defined]
        _INSERT.execute(conn, {"session_id": "ses_a", "last_seq": 5})
        bumped = _BUMP.scalar(conn, {"sid": "ses_a"})  # ``last_seq + 1``: the 1 is a literal
        seen_by_core = conn.execute(text("SELECT last_seq FROM session_head")).scalar_one()
        return bumped, seen_by_core

    assert await db.write(write) == (6, 6)
    assert await db.read(lambda c: _GET.scalar(c, {"sid": "ses_a"})) == 6
    assert await db.read(lambda c: _GET.scalar(c, {"sid": "ses_none"})) is None


async def test_a_failed_transaction_rolls_prepared_writes_back(db: Database) -> None:
    def write(tx: object) -> None:
        _INSERT.execute(tx.conn, {"session_id": "ses_b", "last_seq": 1})  # type: ignore[attr-defined]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await db.write(write)
    assert await db.read(lambda c: _GET.scalar(c, {"sid": "ses_b"})) is None


async def test_a_missing_parameter_is_a_key_error(db: Database) -> None:
    with pytest.raises(KeyError, match="sid"):
        await db.read(lambda c: _GET.scalar(c, {}))


def test_named_paramstyle_dialects_get_a_dict() -> None:
    stmt = (
        update(session_head)
        .where(session_head.c.session_id == bindparam("sid"))
        .values(last_seq=session_head.c.last_seq + 1)
    )
    compiled = _Compiled(stmt, postgresql.dialect(), None)  # type: ignore[no-untyped-call]
    assert not compiled.positional
    args = compiled.args({"sid": "ses_a"})
    assert isinstance(args, dict)
    assert args["sid"] == "ses_a"
    assert sorted(args.values(), key=str) == [1, "ses_a"]


_SESSIONS = Upsert(session, session.c.id, utf8=("data",), fixed=("parent_id",))


def _session_row(parent: str | None, title: str) -> dict[str, object]:
    return {
        "id": "ses_u",
        "parent_id": parent,
        "directory": "/w",
        "title": title,
        "time_created": 1,
        "time_updated": 2,
        "data": orjson.dumps({"title": title}),
    }


async def test_an_upsert_overwrites_a_row_whether_or_not_its_fixed_columns_changed(
    db: Database,
) -> None:
    """A fixed column is left out of the overwrite only while it is unchanged (NULL included);
    a changed one is written too."""

    def stored(conn: Connection) -> tuple[object, ...]:
        row = conn.execute(select(session.c.parent_id, session.c.title, session.c.data)).one()
        return tuple(row)

    def overwrite(parent: str | None, title: str) -> Callable[[Tx], None]:
        return lambda tx: _SESSIONS.execute(tx.conn, _session_row(parent, title))

    for parent, title in [(None, "a"), (None, "b"), ("ses_p", "c"), ("ses_p", "d"), (None, "e")]:
        await db.write(overwrite(parent, title))
        assert await db.read(stored) == (parent, title, f'{{"title":"{title}"}}')


async def test_overwriting_a_row_leaves_the_index_of_an_unchanged_fixed_column_alone(
    tmp_path: Path,
) -> None:
    """SQLite writes a page of every index whose column an UPDATE sets, even to its own value:
    the overwrite's commit must carry no page of ``ix_session_parent`` (issue #13)."""
    path = tmp_path / "pages.db"
    db = await Database.open(path)
    try:
        await db.write(lambda tx: _SESSIONS.execute(tx.conn, _session_row(None, "a")))
        with closing(sqlite3.connect(path)) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await db.write(lambda tx: _SESSIONS.execute(tx.conn, _session_row(None, "b")))
        wal = (tmp_path / "pages.db-wal").read_bytes()
        page_size = int.from_bytes(wal[8:12], "big")
        pages = {
            int.from_bytes(wal[at : at + 4], "big") for at in range(32, len(wal), 24 + page_size)
        }
        with closing(sqlite3.connect(path)) as raw:
            owners = {
                name
                for name, page in raw.execute("SELECT name, pageno FROM dbstat")
                if page in pages
            }
    finally:
        await db.close()
    assert "session" in owners
    assert "ix_session_parent" not in owners
