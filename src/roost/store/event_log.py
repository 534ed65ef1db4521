"""The append-only event log: ``Tx.append`` assigns ``seq`` and folds the projections.

Invariant: within one session, ``seq`` runs 1, 2, 3, … with no gap and no repeat. It comes from
the ``session_head`` counter, in the same transaction that inserts the event, and
``UNIQUE(session_id, seq)`` backs it. No caller can pass a ``seq``. A write command bumps a
session's counter once, at its first event of that session (on PostgreSQL the update holds the
row's lock until commit, so no other transaction numbers that session meanwhile); its further
events take the next numbers, and ``Tx.finish`` stores the last one before the command ends.
Each event's projection update (``projector.apply``) commits in that same transaction, so the
log and the projections never disagree.

Each event is encoded to JSON once (``encoding.encode``): the projected object it carries (a
part, a message's or session's ``info``) is encoded first and embedded in the event's JSON as a
fragment, so the event row and the projection row hold the same bytes without a second encoding.
The one exception is the update that closes a streamed part: the log keeps it by reference to
the part's deltas, and reads give it back whole (``deltas.by_reference``, ``deltas.expand``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import Connection, Row, bindparam, insert, select, update

from roost.model.event import INTERNAL_PREFIX, PART_UPDATED, StoredEvent
from roost.store import deltas, projector
from roost.store.encoding import encode
from roost.store.prepared import Prepared, utf8_bytes, utf8_text
from roost.store.schema import event, session_head

_INSERT_EVENT = Prepared(
    insert(event)
    .values(
        session_id=bindparam("session_id"),
        seq=bindparam("seq"),
        type=bindparam("type"),
        data=utf8_text("data"),
        time_ms=bindparam("time_ms"),
    )
    .returning(event.c.id)
)
_BUMP_SEQ = Prepared(
    update(session_head)
    .where(session_head.c.session_id == bindparam("sid"))
    .values(last_seq=session_head.c.last_seq + 1)
    .returning(session_head.c.last_seq)
)
_INSERT_HEAD = Prepared(insert(session_head), keys=("session_id", "last_seq"))
_SET_SEQ = Prepared(
    update(session_head)
    .where(session_head.c.session_id == bindparam("sid"))
    .values(last_seq=bindparam("seq"))
)


def now_ms() -> int:
    """Unix epoch milliseconds, by this host's clock."""
    return int(time.time() * 1000)


CLOCK = "roost.clock"
"""Key in a store connection's ``info`` of its database's clock (``Database.clock_ms``)."""


def store_now_ms(conn: Connection) -> int:
    """Now in Unix epoch ms by the clock every replica of the store agrees on (PostgreSQL's
    ``clock_timestamp()``; the host's for SQLite, whose processes share one host)."""
    clock = conn.info.get(CLOCK)
    return int(clock(conn)) if clock is not None else now_ms()


class Tx:
    """One write transaction on the writer thread; collects the events it appends."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.events: list[StoredEvent] = []
        self._heads: dict[str, list[int]] = {}
        """Per session this command appended to: [``last_seq`` as stored, last ``seq`` given]."""

    def append(self, session_id: str, type_: str, properties: dict[str, Any]) -> StoredEvent:
        """Append one event, assign its ``seq``, and fold it into the projections.

        Args:
            session_id: The owning session (``ses_…``).
            type_: Wire event type (``roost.model.event`` names them).
            properties: The wire ``properties``; must be JSON-serializable.
        """
        seq = self._next_seq(session_id)
        key = projector.ROW_KEY.get(type_)
        if key is None:
            row = None
            data = encode(properties)
        else:
            row = encode(properties[key])
            data = encode({**properties, key: orjson.Fragment(row)})
        # A streamed part's end is kept by reference to its deltas (``deltas``).
        reference = None
        if type_ == PART_UPDATED:
            reference = deltas.by_reference(self.conn, session_id, properties, seq)
        at = now_ms()
        event_id = _INSERT_EVENT.scalar(
            self.conn,
            {
                "session_id": session_id,
                "seq": seq,
                "type": type_,
                "data": data if reference is None else reference.event,
                "time_ms": at,
            },
        )
        projector.apply(self.conn, type_, properties, row, seq=seq, reference=reference)
        stored = StoredEvent(event_id, session_id, seq, type_, properties, data, at)
        self.events.append(stored)
        return stored

    def finish(self) -> None:
        """Store each session's counter where this command's events left it (module
        docstring); the writer calls it when the command returns, before anything else runs in
        the transaction."""
        for session_id, (stored, given) in self._heads.items():
            if given != stored:
                _SET_SEQ.execute(self.conn, {"sid": session_id, "seq": given})
        self._heads.clear()

    def _next_seq(self, session_id: str) -> int:
        head = self._heads.get(session_id)
        if head is not None:
            head[1] += 1
            return head[1]
        bumped = _BUMP_SEQ.scalar(self.conn, {"sid": session_id})
        if bumped is not None:
            seq = int(bumped)
        else:
            _INSERT_HEAD.execute(self.conn, {"session_id": session_id, "last_seq": 1})
            seq = 1
        self._heads[session_id] = [seq, seq]
        return seq


_STORED_COLUMNS = (
    event.c.id,
    event.c.session_id,
    event.c.seq,
    event.c.type,
    utf8_bytes(event.c.data).label("data"),
    event.c.time_ms,
)
"""An event row with its JSON as bytes; ``properties`` is parsed only if asked for."""


def read_events_after(
    conn: Connection, after_id: int, *, limit: int = 1000, visible_only: bool = False
) -> list[StoredEvent]:
    """Committed events with global ``id > after_id``, oldest first (at most ``limit``);
    with ``visible_only``, without internal ones (``event.is_internal``)."""
    query = select(*_STORED_COLUMNS).where(event.c.id > after_id)
    if visible_only:
        query = query.where(~event.c.type.startswith(INTERNAL_PREFIX, autoescape=True))
    rows = conn.execute(query.order_by(event.c.id).limit(limit)).all()
    return [_stored(conn, r) for r in rows]


def read_session_events(conn: Connection, session_id: str) -> list[StoredEvent]:
    """Every event of one session, in ``seq`` order."""
    rows = conn.execute(
        select(*_STORED_COLUMNS).where(event.c.session_id == session_id).order_by(event.c.seq)
    ).all()
    return [_stored(conn, r) for r in rows]


def _stored(conn: Connection, r: Row[Any]) -> StoredEvent:
    """An event row as published: a part stored by reference gets its deltas back."""
    data = deltas.expand(conn, r.session_id, r.seq, r.type, r.data)
    return StoredEvent(r.id, r.session_id, r.seq, r.type, None, data, r.time_ms)
