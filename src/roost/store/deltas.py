"""Streamed text: a part's deltas stay in the log, and its text is stored once more at most.

Folding each ``message.part.delta`` into its part row rewrote the whole row at every flush, so a
streamed part cost O(size²) bytes written (issue #13). Instead the projector only marks the part
(``mark``): ``part.deltas_from_seq`` takes the ``seq`` of the first delta since the part's last
``message.part.updated`` and keeps it while more deltas arrive, so the row is written once per
stream whatever its length. Readers get the part as it stands from ``fold``: the row's ``data``
with the session's deltas for that part from that ``seq`` on appended, each to its ``field``, in
``seq`` order. The next ``message.part.updated`` stores the part whole and clears the mark (the
turn ends every streamed part with one carrying the whole text, as OpenCode does), so a finished
part is read from its row alone.

That closing update is kept by reference (issue #13: the text was stored three times, in the
deltas, in the closing event and in the row). When the part it stores is its row with the
pending deltas appended, and nothing else changed in the streamed fields (``by_reference``
checks this against the log itself, so no caller can get it wrong):

- the log keeps it with those fields as they stood before the deltas, plus ``DELTAS_FROM`` (the
  first delta's ``seq``); ``expand`` appends the deltas back whenever the log is read
  (``event_log.read_events_after``: replays, other replicas' feeds; rebuilds), so every reader
  gets the bytes that were published live;
- the row keeps no copy either when reading the part back stays cheap (``Reference.in_row``):
  its text came in few flushes (at most ``FOLD_SPAN`` events of the session from its first
  delta to its close) and is at least ``FOLD_MIN_CHARS`` long, or it is at least ``LONG_CHARS``
  long whatever the number of flushes. The row then holds the part as the log does, with
  ``deltas_to_seq`` set to the closing update's ``seq``, and ``fold`` appends the deltas
  between the two. Other parts are stored whole, so reading them costs one row, not a delta
  per flush of a slow stream.

Invariant: what ``fold`` returns for a part equals folding the log's events in order with
``data[field] = (data.get(field) or "") + delta`` after each ``message.part.updated`` that
stored it, which is what the part row itself held before. A delta counts only in its own
session's log, and a delta for a part that does not exist (removed, or never stored) changes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, null, select, update

from roost.model import event as ev
from roost.store.encoding import encode
from roost.store.prepared import Prepared, utf8_bytes
from roost.store.schema import event, part

LONG_CHARS = 1_000_000
"""Streamed characters from which a finished part is stored by reference in its row too,
however many deltas it came in (a slow stream commits one every 50 ms to 1 s,
``engine/turn.py``, and reading a part by reference parses each of them)."""

FOLD_SPAN = 64
"""Events of its session, at most, from a streamed part's first delta to its closing update
for its row to keep it by reference from ``FOLD_MIN_CHARS`` on: reading it back then parses at
most this many events."""

FOLD_MIN_CHARS = 8192
"""Streamed characters from which a part that came in few flushes (``FOLD_SPAN``) is stored by
reference in its row: below it the copy saved is smaller than two pages of the database."""

DELTAS_FROM = "roost.deltasFrom"
"""Key of a stored ``message.part.updated`` kept by reference: the ``seq`` its part's deltas
start from (never sent to clients: ``expand`` removes it)."""

_DELTAS_FROM_BYTES = f'"{DELTAS_FROM}"'.encode()

_MARK = Prepared(
    update(part)
    .where(
        part.c.id == bindparam("pid"),
        part.c.session_id == bindparam("sid"),
        part.c.deltas_from_seq.is_(None),
    )
    .values(deltas_from_seq=bindparam("seq"))
)
_RANGED = Prepared(
    select(part.c.message_id, utf8_bytes(part.c.data), part.c.id, part.c.deltas_from_seq)
    .add_columns(part.c.deltas_to_seq)
    .where(
        part.c.id == bindparam("pid"),
        part.c.session_id == bindparam("sid"),
        part.c.deltas_to_seq.is_not(None),
    )
)
_STORE_WHOLE = Prepared(
    update(part)
    .where(part.c.id == bindparam("pid"), part.c.session_id == bindparam("sid"))
    .values(data=bindparam("data"), deltas_from_seq=null(), deltas_to_seq=null())
)
_ROW_MARK = Prepared(
    select(utf8_bytes(part.c.data), part.c.deltas_from_seq, part.c.deltas_to_seq).where(
        part.c.id == bindparam("pid"), part.c.session_id == bindparam("sid")
    )
)
_DELTAS_FROM = Prepared(
    select(event.c.seq, utf8_bytes(event.c.data))
    .where(
        event.c.session_id == bindparam("sid"),
        event.c.seq >= bindparam("from_seq"),
        event.c.type == bindparam("type"),
    )
    .order_by(event.c.seq)
)
_PART_DELTAS = Prepared(
    select(utf8_bytes(event.c.data))
    .where(
        event.c.session_id == bindparam("sid"),
        event.c.seq >= bindparam("from_seq"),
        event.c.seq < bindparam("to_seq"),
        event.c.type == bindparam("type"),
    )
    .order_by(event.c.seq)
)

PartRow = tuple[str, str, str, int | None, int | None]
"""A part row as ``fold`` takes it: ``(message_id, data, id, deltas_from_seq, deltas_to_seq)``."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A closing ``message.part.updated`` kept by reference (``by_reference``).

    Attributes:
        event: The event JSON to store in the log.
        part: The part JSON as the log holds it (streamed fields as before the deltas).
        from_seq: The first delta's ``seq``.
        to_seq: The closing update's ``seq``.
        chars: Characters in the streamed fields, deltas included.
    """

    event: bytes
    part: bytes
    from_seq: int
    to_seq: int
    chars: int

    @property
    def in_row(self) -> bool:
        """Whether the part row, too, holds the part by reference: it is at least
        ``LONG_CHARS`` long, or at least ``FOLD_MIN_CHARS`` and its deltas lie within
        ``FOLD_SPAN`` events of its session."""
        if self.chars >= LONG_CHARS:
            return True
        return self.chars >= FOLD_MIN_CHARS and self.to_seq - self.from_seq <= FOLD_SPAN


def mark(conn: Connection, session_id: str, part_id: str, seq: int) -> None:
    """Fold one ``message.part.delta`` (the ``seq``-th event of ``session_id``) into the
    projection: its part has deltas from ``seq`` on, unless it already had some. Writes the part
    row at the first delta of a stream only; later ones match no row. A part stored by
    reference is first stored whole (its deltas end where this one's start)."""
    ranged = _RANGED.execute(conn, {"pid": part_id, "sid": session_id}).fetchone()
    if ranged is not None:
        ((_, whole, *_),) = fold(conn, session_id, [_text_row(ranged)])
        _STORE_WHOLE.execute(conn, {"pid": part_id, "sid": session_id, "data": whole})
    _MARK.execute(conn, {"pid": part_id, "sid": session_id, "seq": seq})


def fold(conn: Connection, session_id: str, rows: Iterable[PartRow]) -> list[PartRow]:
    """Part rows of one session as they stand, in their order.

    A marked row comes back with its pending deltas appended to its ``data`` (the wire JSON of
    a ``Part``; see the module docstring); the others come back as they are, so a session with
    nothing streaming costs one pass over its rows.
    """
    rows = list(rows)
    open_ended = {
        pid: first for _, _, pid, first, last in rows if first is not None and last is None
    }
    pending = _pending(conn, session_id, open_ended) if open_ended else {}
    for _, _, pid, first, last in rows:
        if first is not None and last is not None:
            pending[pid] = _between(conn, session_id, pid, first, last)
    if not pending:
        return rows
    return [
        (mid, _appended(data, pending[pid]), pid, first, last)
        if pid in pending
        else (mid, data, pid, first, last)
        for mid, data, pid, first, last in rows
    ]


def by_reference(
    conn: Connection, session_id: str, properties: dict[str, Any], seq: int
) -> Reference | None:
    """How to store a ``message.part.updated`` (``properties``, the ``seq``-th event of
    ``session_id``) that closes a stream; None to store it whole.

    It closes a stream when its part's row is marked and each field the pending deltas name
    holds exactly the row's value with those deltas appended. ``expand`` turns the stored event
    back into ``encode(properties)``, byte for byte.
    """
    new = properties["part"]
    found = _ROW_MARK.execute(conn, {"pid": new["id"], "sid": session_id}).fetchone()
    # Not marked, or already stored by reference (a whole update after that stores it whole).
    if found is None or found[1] is None or found[2] is not None:
        return None
    before_bytes, from_seq, _ = found
    pending = _between(conn, session_id, new["id"], from_seq, seq)
    if not pending:
        return None
    before = orjson.loads(before_bytes)
    kept = dict(new)
    chars = 0
    for name, pieces in pending.items():
        prefix = before.get(name) or ""
        value = new.get(name)
        if not isinstance(value, str) or not value.startswith(prefix):
            return None
        if value[len(prefix) :] != "".join(pieces):
            return None
        kept[name] = prefix
        chars += len(value)
    stored_part = encode(kept)
    event_json = encode({**properties, "part": orjson.Fragment(stored_part), DELTAS_FROM: from_seq})
    return Reference(event_json, stored_part, int(from_seq), seq, chars)


def stored_reference(
    conn: Connection, session_id: str, seq: int, type_: str, data: bytes
) -> tuple[bytes, Reference | None]:
    """A logged event's JSON as it was published (``expand``), and, for a closing update kept
    by reference, that ``Reference`` as ``by_reference`` made it (for rebuilds)."""
    props = _referenced(type_, data)
    if props is None:
        return data, None
    from_seq = props.pop(DELTAS_FROM)
    kept = props["part"]
    stored_part = encode(kept)
    whole = dict(kept)
    chars = 0
    for name, pieces in _between(conn, session_id, whole["id"], from_seq, seq).items():
        whole[name] = (whole.get(name) or "") + "".join(pieces)
        chars += len(whole[name])
    published = encode({**props, "part": orjson.Fragment(encode(whole))})
    return published, Reference(data, stored_part, from_seq, seq, chars)  # ``data``: its event


def expand(conn: Connection, session_id: str, seq: int, type_: str, data: bytes) -> bytes:
    """The event JSON ``data`` (the ``seq``-th event of ``session_id``) as it was published:
    a ``message.part.updated`` stored by reference gets its deltas back (``by_reference``);
    any other event is returned as it is."""
    return stored_reference(conn, session_id, seq, type_, data)[0]


def _referenced(type_: str, data: bytes) -> dict[str, Any] | None:
    """The properties of a stored event kept by reference, or None for any other."""
    if type_ != ev.PART_UPDATED or _DELTAS_FROM_BYTES not in data:
        return None
    props: dict[str, Any] = orjson.loads(data)
    if not isinstance(props.get(DELTAS_FROM), int):  # the key's text was inside a value
        return None
    return props


def _text_row(row: Sequence[Any]) -> PartRow:
    mid, data, pid, first, last = row
    return (mid, bytes(data).decode(), pid, first, last)


def _pending(
    conn: Connection, session_id: str, marked: dict[str, int]
) -> dict[str, dict[str, list[str]]]:
    """Part id → field → its deltas, oldest first, for the ``marked`` parts (id → first seq)."""
    found: dict[str, dict[str, list[str]]] = {}
    params = {"sid": session_id, "from_seq": min(marked.values()), "type": ev.PART_DELTA}
    for seq, raw in _DELTAS_FROM.execute(conn, params):
        props = orjson.loads(raw)
        first = marked.get(props["partID"])
        if first is not None and seq >= first:
            fields = found.setdefault(props["partID"], {})
            fields.setdefault(props["field"], []).append(props["delta"])
    return found


def _between(
    conn: Connection, session_id: str, part_id: str, from_seq: int, to_seq: int
) -> dict[str, list[str]]:
    """Field → the part's deltas with ``from_seq <= seq < to_seq``, oldest first."""
    found: dict[str, list[str]] = {}
    params = {"sid": session_id, "from_seq": from_seq, "to_seq": to_seq, "type": ev.PART_DELTA}
    for (raw,) in _PART_DELTAS.execute(conn, params):
        props = orjson.loads(raw)
        if props["partID"] == part_id:
            found.setdefault(props["field"], []).append(props["delta"])
    return found


def _appended(data: str, fields: dict[str, list[str]]) -> str:
    """The part JSON ``data`` with each field's ``pieces`` appended to it."""
    obj = orjson.loads(data)
    for name, pieces in fields.items():
        obj[name] = (obj.get(name) or "") + "".join(pieces)
    return encode(obj).decode()
