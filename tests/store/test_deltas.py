"""Streamed text: deltas mark their part, and reads append them from the log (issue #13)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, text

from roost.model import event as ev
from roost.model.event import StoredEvent
from roost.store import deltas, queries
from roost.store.database import Database
from roost.store.event_log import Tx, read_events_after
from roost.store.projector import rebuild_projections
from tests.store.builders import session_info, user_info
from tests.store.builders import text as text_part

pytestmark = pytest.mark.anyio

SID, MID, PID = "ses_1", "msg_1", "prt_1"


def _delta(pid: str, piece: str, *, sid: str = SID, mid: str = MID, field: str = "text") -> Any:
    return {"sessionID": sid, "messageID": mid, "partID": pid, "field": field, "delta": piece}


def _start(tx: Tx, *pids: str) -> None:
    tx.append(SID, ev.SESSION_CREATED, {"sessionID": SID, "info": session_info(SID)})
    tx.append(SID, ev.MESSAGE_UPDATED, {"sessionID": SID, "info": user_info(MID, SID)})
    for pid in pids:
        tx.append(SID, ev.PART_UPDATED, {"sessionID": SID, "part": text_part(pid, SID, MID)})


def _texts(conn: Connection) -> dict[str, str]:
    (row,) = queries.list_messages(conn, SID)
    return {p["id"]: p["text"] for p in map(orjson.loads, row.parts)}


def _rows(conn: Connection) -> list[tuple[str, str, int | None]]:
    rows = conn.execute(text("SELECT id, data, deltas_from_seq FROM part ORDER BY id"))
    return [(r[0], r[1], r[2]) for r in rows]


async def test_a_streamed_part_is_read_with_its_text_so_far_while_its_row_stays_put(
    db: Database,
) -> None:
    await db.write(lambda tx: _start(tx, PID))
    before = await db.read(_rows)
    for n in range(50):  # one commit per delta, as a turn's flushes are

        def flush(tx: Tx, n: int = n) -> None:
            tx.append(SID, ev.PART_DELTA, _delta(PID, f"{n},"))

        await db.write(flush)
        if n == 0:
            (marked,) = await db.read(_rows)
            assert marked[:2] == before[0][:2]  # the first delta marks the row, data unchanged
            assert marked[2] == 4  # the delta's seq: created, message, part, delta
    assert await db.read(_rows) == [marked]  # fifty flushes later: not rewritten
    expected = "".join(f"{n}," for n in range(50))
    assert await db.read(_texts) == {PID: expected}
    whole = {**text_part(PID, SID, MID, expected), "time": {"start": 1, "end": 2}}
    await db.write(lambda tx: tx.append(SID, ev.PART_UPDATED, {"sessionID": SID, "part": whole}))
    ((_, data, mark),) = await db.read(_rows)
    assert (orjson.loads(data), mark) == (whole, None)
    assert await db.read(_texts) == {PID: expected}


async def test_reads_append_each_part_its_own_deltas_after_its_last_whole_update(
    db: Database,
) -> None:
    def write(tx: Tx) -> None:
        _start(tx, "prt_a", "prt_b")
        tx.append(SID, ev.PART_DELTA, _delta("prt_b", "b1 "))
        tx.append(SID, ev.PART_DELTA, _delta("prt_a", "a1 "))
        part = text_part("prt_a", SID, MID, "A ")  # whole again: "a1 " is no longer pending
        tx.append(SID, ev.PART_UPDATED, {"sessionID": SID, "part": part})
        tx.append(SID, ev.PART_DELTA, _delta("prt_a", "a2"))
        tx.append(SID, ev.PART_DELTA, _delta("prt_b", "b2"))
        tx.append(SID, ev.PART_DELTA, _delta("prt_gone", "x"))  # no such part: nothing

    await db.write(write)
    assert await db.read(_texts) == {"prt_a": "A a2", "prt_b": "b1 b2"}
    got = await db.read(lambda c: queries.get_message(c, SID, MID))
    assert got is not None
    assert [orjson.loads(p)["text"] for p in got.parts] == ["A a2", "b1 b2"]


async def test_a_delta_for_a_removed_part_changes_nothing(db: Database) -> None:
    def write(tx: Tx) -> None:
        _start(tx, PID)
        tx.append(SID, ev.PART_DELTA, _delta(PID, "gone"))
        tx.append(SID, ev.PART_REMOVED, {"sessionID": SID, "messageID": MID, "partID": PID})
        tx.append(SID, ev.PART_DELTA, _delta(PID, "late"))
        part = text_part(PID, SID, MID, "new")  # the same id stored again
        tx.append(SID, ev.PART_UPDATED, {"sessionID": SID, "part": part})

    await db.write(write)
    assert await db.read(_texts) == {PID: "new"}


# -- property: reading equals folding every delta into its row, as the projection did ------

SESSIONS = ["ses_a", "ses_b"]
PARTS = ["prt_1", "prt_2", "prt_3"]
Op = tuple[str, str, str, str, str]
ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["part", "delta", "delta", "delta", "close", "close", "part_remove", "message_remove"]
        ),
        st.sampled_from(SESSIONS),
        st.sampled_from(PARTS),
        st.sampled_from(["text", "other"]),
        st.text(alphabet="ab \n\u00e9", max_size=4),
    ),
    max_size=50,
)
Event = tuple[str, str, dict[str, Any]]
_PART_A: Op = ("part", "ses_a", "prt_1", "text", "")
_RESTREAMED: list[Op] = [
    _PART_A,
    ("delta", *_PART_A[1:4], "b"),
    ("close", *_PART_A[1:]),
    ("delta", *_PART_A[1:4], "c"),
]
"""A part streamed, closed (by reference, in its row too with ``LONG_CHARS`` 1), then streamed
again."""
_SLOW: list[Op] = [_PART_A, *[("delta", *_PART_A[1:4], "b")] * 4, ("close", *_PART_A[1:])]
"""A part closed 4 events after its first delta: by reference in the log only with
``FOLD_SPAN`` 3."""


def _events(plan: list[Op]) -> tuple[list[Event], dict[str, dict[str, Any]]]:
    """The events ``plan`` appends, and every part folded as the projection folded deltas into
    rows before issue #13. A ``close`` stores a part as it stands, deltas included: what a turn
    does at a streamed part's end (stored by reference to its deltas)."""
    parts: dict[str, dict[str, Any]] = {}
    events: list[Event] = []
    for kind, sid, pid, field, body in plan:
        mid, pid = f"msg_{sid}", f"{pid}_{sid}"
        props: dict[str, Any]
        if kind == "part":
            props = {"sessionID": sid, "part": text_part(pid, sid, mid, body)}
            events.append((sid, ev.PART_UPDATED, props))
            parts[pid] = dict(props["part"])
        elif kind == "close" and pid in parts:
            events.append((sid, ev.PART_UPDATED, {"sessionID": sid, "part": dict(parts[pid])}))
        elif kind == "delta":
            events.append((sid, ev.PART_DELTA, _delta(pid, body, sid=sid, mid=mid, field=field)))
            if pid in parts:
                parts[pid][field] = (parts[pid].get(field) or "") + body
        elif kind == "part_remove":
            events.append(
                (sid, ev.PART_REMOVED, {"sessionID": sid, "messageID": mid, "partID": pid})
            )
            parts.pop(pid, None)
        elif kind == "message_remove":
            events.append((sid, ev.MESSAGE_REMOVED, {"sessionID": sid, "messageID": mid}))
            parts = {k: v for k, v in parts.items() if v["messageID"] != mid}
    return events, parts


def _read_parts(conn: Connection) -> dict[str, dict[str, Any]]:
    found = {}
    for sid in SESSIONS:
        rows = conn.execute(
            text(
                "SELECT message_id, data, id, deltas_from_seq, deltas_to_seq FROM part"
                " WHERE session_id = :sid ORDER BY id"
            ),
            {"sid": sid},
        ).all()
        for _, data, *_ in deltas.fold(conn, sid, [(r[0], r[1], r[2], r[3], r[4]) for r in rows]):
            part = orjson.loads(data)
            found[part["id"]] = part
    return found


def _raw_parts(conn: Connection) -> list[tuple[Any, ...]]:
    query = "SELECT id, data, deltas_from_seq, deltas_to_seq FROM part ORDER BY id"
    return [tuple(r) for r in conn.execute(text(query))]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=ops, per_commit=st.integers(min_value=1, max_value=5))
# A whole update that is not the row plus its deltas, in its own commit and in theirs.
@example(plan=[_PART_A, ("delta", *_PART_A[1:4], "b"), (*_PART_A[:4], "x")], per_commit=1)
@example(plan=[_PART_A, ("delta", *_PART_A[1:4], "b"), (*_PART_A[:4], "bx")], per_commit=3)
# A part stored by reference that streams again, then closes again (or not).
@example(plan=_RESTREAMED, per_commit=1)
@example(plan=[*_RESTREAMED, ("close", *_PART_A[1:])], per_commit=1)
@example(plan=_SLOW, per_commit=1)
@pytest.mark.parametrize(
    "in_row",
    [
        pytest.param({}, id="rows-whole"),
        pytest.param({"LONG_CHARS": 1}, id="rows-by-reference"),
        pytest.param({"FOLD_MIN_CHARS": 1, "FOLD_SPAN": 3}, id="by-reference-if-few-flushes"),
    ],
)
async def test_reading_streamed_parts_equals_folding_every_delta_into_its_row(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_row: dict[str, int],
    plan: list[Op],
    per_commit: int,
) -> None:
    """Reads, the log read back (replays, other replicas' feeds) and a rebuild of the
    projections all see what was appended, whether a part was stored whole or by reference.
    ``in_row`` sets when a part closed by reference keeps its text in the log only: with the
    defaults the test's short parts never do; with ``LONG_CHARS`` 1 every one does; with the
    last, those whose deltas lie within 3 events of their session do."""
    for name, value in in_row.items():
        monkeypatch.setattr(deltas, name, value)
    events, expected = _events(plan)
    db = await Database.open(tmp_path / f"deltas-{time.monotonic_ns()}.db")
    published: dict[int, bytes] = {}
    db.on_commit = lambda batch: published.update((e.id, e.data) for e in batch)
    try:
        for at in range(0, len(events), per_commit):

            def write(tx: Tx, chunk: list[Event] = events[at : at + per_commit]) -> None:
                for event in chunk:
                    tx.append(*event)

            await db.write(write)
        assert await db.read(_read_parts) == expected
        logged = await db.read(lambda c: read_events_after(c, 0, limit=len(events) + 1))
        assert {e.id: e.data for e in logged} == published
        live = await db.read(_raw_parts)
        await db.write(lambda tx: rebuild_projections(tx.conn))
        assert await db.read(_raw_parts) == live
        assert await db.read(_read_parts) == expected
    finally:
        await db.close()


def _appending(type_: str, props: dict[str, Any]) -> Callable[[Tx], int]:
    """A write appending one event of session ``SID``; returns its id."""
    return lambda tx: tx.append(SID, type_, props).id


def _logged(event_id: int) -> Callable[[Connection], StoredEvent]:
    """A read of one event as the log gives it back (replays, other replicas' feeds)."""
    return lambda c: read_events_after(c, event_id - 1, limit=1)[0]


async def test_a_streamed_parts_closing_update_is_logged_by_reference_to_its_deltas(
    db: Database,
) -> None:
    published: dict[int, bytes] = {}
    db.on_commit = lambda batch: published.update((e.id, e.data) for e in batch)
    await db.write(lambda tx: _start(tx, PID))
    pieces = ["x" * 1000 + str(n) for n in range(20)]
    for piece in pieces:
        await db.write(_appending(ev.PART_DELTA, _delta(PID, piece)))
    whole = text_part(PID, SID, MID, "".join(pieces))
    closing = await db.write(_appending(ev.PART_UPDATED, {"sessionID": SID, "part": whole}))

    def stored(c: Connection) -> str:
        return str(
            c.execute(text("SELECT data FROM event WHERE id = :id"), {"id": closing}).scalar()
        )

    raw = await db.read(stored)
    assert len(raw) < 1000 and deltas.DELTAS_FROM in orjson.loads(raw)
    replayed = await db.read(_logged(closing))
    assert replayed.data == published[closing]
    assert orjson.loads(replayed.data)["part"] == whole
    assert await db.read(_texts) == {PID: "".join(pieces)}

    # An update that is not the row plus its deltas is logged whole, and so is a part whose
    # text is the marker's own name.
    await db.write(_appending(ev.PART_DELTA, _delta(PID, "more")))
    for other in ("something else", deltas.DELTAS_FROM):
        changed = text_part(PID, SID, MID, other)
        event_id = await db.write(_appending(ev.PART_UPDATED, {"sessionID": SID, "part": changed}))
        read = await db.read(_logged(event_id))
        assert read.data == published[event_id]
        assert orjson.loads(read.data)["part"]["text"] == other
