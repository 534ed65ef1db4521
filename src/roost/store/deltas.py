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

Invariant: what ``fold`` returns for a part equals folding the log's events in order with
``data[field] = (data.get(field) or "") + delta`` after each ``message.part.updated`` that
stored it, which is what the part row itself held before. A delta counts only in its own
session's log, and a delta for a part that does not exist (removed, or never stored) changes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

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
