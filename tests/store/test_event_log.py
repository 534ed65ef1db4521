"""The event log: store-assigned, gapless ``seq``; group commit; one writer."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from roost.errors import Conflict
from roost.model import event as ev
from roost.store import database
from roost.store.database import Database
from roost.store.event_log import Tx, read_events_after
from roost.store.postgres import WRITE_LOCK, PostgresDatabase, libpq_url
from roost.store.sqlite import SQLiteDatabase
from tests.store.builders import session_info, user_info
from tests.store.builders import text as text_part

pytestmark = pytest.mark.anyio


def _status(tx: Tx, sid: str) -> None:
    tx.append(sid, "session.status", {"sessionID": sid, "status": {"type": "busy"}})


async def _seqs(db: Database) -> dict[str, list[int]]:
    rows = await db.read(
        lambda c: c.execute(text("SELECT session_id, seq FROM event ORDER BY id")).all()
    )
    out: dict[str, list[int]] = {}
    for sid, seq in rows:
        out.setdefault(sid, []).append(seq)
    return out


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    plan=st.lists(
        st.tuples(
            st.sampled_from(["ses_a", "ses_b", "ses_c"]), st.integers(min_value=1, max_value=4)
        ),
        min_size=1,
        max_size=40,
    )
)
async def test_seq_is_gapless_per_session_under_concurrent_writers(
    tmp_path: Path, plan: list[tuple[str, int]]
) -> None:
    db = await Database.open(tmp_path / f"seq-{time.monotonic_ns()}.db")
    try:

        def command(sid: str, n: int):  # type: ignore[no-untyped-def]
            def fn(tx: Tx) -> None:
                for _ in range(n):
                    _status(tx, sid)

            return fn

        await asyncio.gather(*(db.write(command(sid, n)) for sid, n in plan))
        expected: dict[str, int] = {}
        for sid, n in plan:
            expected[sid] = expected.get(sid, 0) + n
        seqs = await _seqs(db)
        assert {sid: len(v) for sid, v in seqs.items()} == expected
        for values in seqs.values():
            assert values == list(range(1, len(values) + 1))
    finally:
        await db.close()


async def test_a_failing_command_fails_alone_and_leaves_no_gap(db: Database) -> None:
    def boom(tx: Tx) -> None:
        _status(tx, "ses_a")
        raise ValueError("refused")

    results = await asyncio.gather(
        db.write(lambda tx: _status(tx, "ses_a")),
        db.write(boom),
        db.write(lambda tx: _status(tx, "ses_a")),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert (await _seqs(db)) == {"ses_a": [1, 2]}


async def test_unique_session_seq_is_enforced_by_the_schema(db: Database) -> None:
    await db.write(lambda tx: _status(tx, "ses_a"))

    def duplicate(tx: Tx) -> None:
        tx.conn.execute(
            text(
                "INSERT INTO event (session_id, seq, type, data, time_ms) "
                "VALUES ('ses_a', 1, 'x', '{}', 0)"
            )
        )

    with pytest.raises(Conflict, match=r"UNIQUE|uq_event_session_seq"):
        await db.write(duplicate)


async def test_committed_events_reach_on_commit_in_commit_order(db: Database) -> None:
    seen: list[int] = []
    db.on_commit = lambda events: seen.extend(e.id for e in events)
    await asyncio.gather(*(db.write(lambda tx: _status(tx, "ses_a")) for _ in range(50)))
    assert seen == sorted(seen) and len(seen) == 50


async def test_writes_wait_for_another_writer_instead_of_failing_locked(
    db: Database,
) -> None:
    """Another process holding the write lock delays our commit; it never surfaces as
    "database is locked"."""
    holder: Any
    if isinstance(db, PostgresDatabase):
        holder = psycopg.connect(libpq_url(db.url), autocommit=True)
        holder.execute(f"SELECT pg_advisory_lock({WRITE_LOCK})")
        unlock = f"SELECT pg_advisory_unlock({WRITE_LOCK})"
    else:
        assert isinstance(db, SQLiteDatabase)
        holder = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        unlock = "COMMIT"
    releasing = threading.Event()

    def release_later() -> None:
        time.sleep(0.5)
        releasing.set()  # before the release: the write may commit as soon as it lands
        holder.execute(unlock)

    threading.Thread(target=release_later).start()
    await db.write(
        lambda tx: tx.append(
            "ses_a", "session.created", {"sessionID": "ses_a", "info": session_info("ses_a")}
        )
    )
    assert releasing.is_set()  # the write waited for the other writer's lock
    holder.close()
    assert (await _seqs(db)) == {"ses_a": [1]}


async def test_write_after_close_raises_store_closed(tmp_path: Path) -> None:
    from roost.errors import StoreClosed

    database = await Database.open(tmp_path / "closed.db")
    await database.close()
    with pytest.raises(StoreClosed):
        await database.write(lambda tx: _status(tx, "ses_a"))


async def test_event_and_projection_rows_hold_orjsons_text_of_what_was_appended(
    db: Database,
) -> None:
    # One encoding serves the event row and the projection row (a fragment of the event's JSON),
    # bound as UTF-8 bytes; both must still be TEXT holding exactly ``orjson.dumps``'s output.
    big = 'naïve "café" — 😀\n' * 40_000  # longer than encoding.LONG_CHARS: encoded in slices
    info = session_info("ses_t")
    message = user_info("msg_t", "ses_t")
    part = text_part("prt_t", "ses_t", "msg_t", big)
    appended = [
        (ev.SESSION_CREATED, {"sessionID": "ses_t", "info": info}),
        (ev.MESSAGE_UPDATED, {"sessionID": "ses_t", "info": message}),
        (ev.PART_UPDATED, {"sessionID": "ses_t", "part": part}),
        (ev.TODO_UPDATED, {"sessionID": "ses_t", "todos": [{"content": big[:100]}]}),
    ]

    def write(tx: Tx) -> list[bytes]:
        return [tx.append("ses_t", type_, props).data for type_, props in appended]

    datas = await db.write(write)
    assert datas == [orjson.dumps(props) for _, props in appended]

    def rows(conn: Connection) -> dict[str, Any]:
        # The stored type of each value: SQLite's typeof, PostgreSQL's pg_typeof.
        kind = "typeof(data)" if conn.dialect.name == "sqlite" else "CAST(pg_typeof(data) AS text)"

        def one(table: str) -> Any:
            return conn.execute(text(f"SELECT {kind}, data FROM {table}")).one()

        return {
            "events": conn.execute(text(f"SELECT {kind}, data FROM event ORDER BY id")).all(),
            "session": one("session"),
            "message": one("message"),
            "part": one("part"),
            "todo": one("todo"),
        }

    stored = await db.read(rows)
    assert [tuple(r) for r in stored["events"]] == [
        ("text", orjson.dumps(props).decode()) for _, props in appended
    ]
    assert tuple(stored["session"]) == ("text", orjson.dumps(info).decode())
    assert tuple(stored["message"]) == ("text", orjson.dumps(message).decode())
    assert tuple(stored["part"]) == ("text", orjson.dumps(part).decode())
    assert tuple(stored["todo"]) == ("text", orjson.dumps([{"content": big[:100]}]).decode())


async def test_a_large_batch_is_published_whole_then_freed_by_the_reaper(db: Database) -> None:
    batches: list[tuple[list[Any], list[int]]] = []
    db.on_commit = lambda events: batches.append((events, [e.seq for e in events]))

    def write(tx: Tx) -> None:
        for _ in range(database._FREE_ON_LOOP + 1):
            _status(tx, "ses_big")

    await db.write(write)  # resumes after the batch was published
    assert [seqs for _, seqs in batches] == [list(range(1, database._FREE_ON_LOOP + 2))]
    published = batches[0][0]
    for _ in range(1000):  # the reaper empties the published list off the loop
        if not published:
            break
        await asyncio.sleep(0.01)
    assert published == []


async def test_events_read_back_hold_the_stored_bytes_and_parse_when_asked(db: Database) -> None:
    props = {"sessionID": "ses_r", "status": {"type": "busy", "note": "naïve — 😀"}}
    written = await db.write(lambda tx: tx.append("ses_r", "session.status", props))
    (read,) = await db.read(lambda c: read_events_after(c, 0))
    assert (read.id, read.seq, read.type, read.data) == (
        written.id,
        1,
        "session.status",
        orjson.dumps(props),
    )
    assert read.properties == props
