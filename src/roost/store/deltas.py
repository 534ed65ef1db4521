"""Streamed text: a part's deltas stay in the log until the part is next stored whole.

Folding each ``message.part.delta`` into its part row rewrote the whole row at every flush, so a
streamed part cost O(size²) bytes written (issue #13). Instead the projector only marks the part
(``mark``): ``part.deltas_from_seq`` takes the ``seq`` of the first delta since the part's last
``message.part.updated`` and keeps it while more deltas arrive, so the row is written once per
stream whatever its length. Readers get the part as it stands from ``fold``: the row's ``data``
with the session's deltas for that part from that ``seq`` on appended, each to its ``field``, in
``seq`` order. The next ``message.part.updated`` stores the part whole and clears the mark (the
turn ends every streamed part with one carrying the whole text, as OpenCode does), so a finished
part is read from its row alone.

The log keeps that closing ``message.part.updated`` by reference (issue #13: the text was
stored three times, in the deltas, in the closing event and in the row). When the part it stores
is its row with the pending deltas appended, and nothing else changed in the streamed fields,
the event row holds the part with those fields as they stood before the deltas, plus
``DELTAS_FROM`` (the first delta's ``seq``); ``expand`` appends the deltas back when the log is
read (``event_log.read_events_after``, replays, other replicas' feeds, rebuilds), so every
reader gets the bytes that were published live. ``by_reference`` checks the equality against
the log itself, so no caller can get it wrong.

Invariant: what ``fold`` returns for a part equals folding the log's events in order with
``data[field] = (data.get(field) or "") + delta`` after each ``message.part.updated`` that
stored it, which is what the part row itself held before. A delta counts only in its own
session's log, and a delta for a part that does not exist (removed, or never stored) changes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, select, update

from roost.model import event as ev
from roost.store.encoding import encode
from roost.store.prepared import Prepared, utf8_bytes
from roost.store.schema import event, part

_MARK = Prepared(
    update(part)
    .where(
        part.c.id == bindparam("pid"),
        part.c.session_id == bindparam("sid"),
        part.c.deltas_from_seq.is_(None),
    )
    .values(deltas_from_seq=bindparam("seq"))
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

_ROW_MARK = Prepared(
    select(utf8_bytes(part.c.data), part.c.deltas_from_seq).where(
        part.c.id == bindparam("pid"), part.c.session_id == bindparam("sid")
    )
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

DELTAS_FROM = "roost.deltasFrom"
"""Key of a stored ``message.part.updated`` kept by reference: the ``seq`` its part's deltas
start from (never sent to clients: ``expand`` removes it)."""

_DELTAS_FROM_BYTES = f'"{DELTAS_FROM}"'.encode()

PartRow = tuple[str, str, str, int | None]
"""A part row as ``fold`` takes it: ``(message_id, data, id, deltas_from_seq)``."""


def mark(conn: Connection, session_id: str, part_id: str, seq: int) -> None:
    """Fold one ``message.part.delta`` (the ``seq``-th event of ``session_id``) into the
    projection: its part has deltas from ``seq`` on, unless it already had some. Writes the part
    row at the first delta of a stream only; later ones match no row."""
    _MARK.execute(conn, {"pid": part_id, "sid": session_id, "seq": seq})


def fold(conn: Connection, session_id: str, rows: Iterable[PartRow]) -> list[PartRow]:
    """Part rows of one session as they stand, in their order.

    A marked row comes back with its pending deltas appended to its ``data`` (the wire JSON of
    a ``Part``; see the module docstring); the others come back as they are, so a session with
    nothing streaming costs one pass over its rows.
    """
    rows = list(rows)
    marked = {pid: seq for _, _, pid, seq in rows if seq is not None}
    if not marked:
        return rows
    pending = _pending(conn, session_id, marked)
    return [
        (mid, _appended(data, pending[pid]), pid, seq) if pid in pending else (mid, data, pid, seq)
        for mid, data, pid, seq in rows
    ]


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


def _appended(data: str, fields: dict[str, list[str]]) -> str:
    """The part JSON ``data`` with each field's ``pieces`` appended to it."""
    obj = orjson.loads(data)
    for name, pieces in fields.items():
        obj[name] = (obj.get(name) or "") + "".join(pieces)
    return encode(obj).decode()


def by_reference(
    conn: Connection, session_id: str, properties: dict[str, Any], seq: int
) -> bytes | None:
    """The event JSON to store for a ``message.part.updated`` (``properties``, the ``seq``-th
    event of ``session_id``) that closes a stream, or None to store it whole.

    It closes a stream when its part's row is marked and each field the pending deltas name
    holds exactly the row's value with those deltas appended. The stored JSON is then
    ``properties`` with those fields as the row has them and ``DELTAS_FROM``; ``expand`` turns
    it back into ``encode(properties)``, byte for byte.
    """
    new = properties["part"]
    found = _ROW_MARK.execute(conn, {"pid": new["id"], "sid": session_id}).fetchone()
    if found is None or found[1] is None:
        return None
    from_seq = int(found[1])
    pending = _between(conn, session_id, new["id"], from_seq, seq)
    if not pending:
        return None
    before = orjson.loads(found[0])
    kept = dict(new)
    for name, pieces in pending.items():
        prefix = before.get(name) or ""
        value = new.get(name)
        if not isinstance(value, str) or not value.startswith(prefix):
            return None
        if value[len(prefix) :] != "".join(pieces):
            return None
        kept[name] = prefix
    return encode({**properties, "part": kept, DELTAS_FROM: from_seq})


def expand(conn: Connection, session_id: str, seq: int, type_: str, data: bytes) -> bytes:
    """The event JSON ``data`` (the ``seq``-th event of ``session_id``) as it was published:
    a ``message.part.updated`` stored by reference gets its deltas back (``by_reference``);
    any other event is returned as it is."""
    if type_ != ev.PART_UPDATED or _DELTAS_FROM_BYTES not in data:
        return data
    props = orjson.loads(data)
    from_seq = props.pop(DELTAS_FROM, None)
    if not isinstance(from_seq, int):  # the key's text was inside a value, not the key
        return data
    whole = dict(props["part"])
    for name, pieces in _between(conn, session_id, whole["id"], from_seq, seq).items():
        whole[name] = (whole.get(name) or "") + "".join(pieces)
    return encode({**props, "part": orjson.Fragment(encode(whole))})


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
