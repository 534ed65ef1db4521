"""Folds one event into the session, message and part projections.

``apply`` is the only code that writes projection rows; the live path (``Tx.append``) and
``rebuild_projections`` both call it, so a rebuild from the log equals the live state. Payloads
are OpenCode's v1 event ``properties`` (``EventSession*``, ``EventMessage*`` schemas).
A ``message.part.delta`` is not folded into its part's row: the row is only marked, and readers
append the deltas from the log (``deltas``), so a streamed part is not rewritten at every flush.

JSON columns are written as UTF-8 bytes (``prepared.utf8_text``) encoded by ``encoding.encode``;
a row's JSON equals ``orjson.dumps`` of the object it projects, byte for byte.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, delete, select, update

from roost.model import event as ev
from roost.store import deltas
from roost.store.encoding import encode
from roost.store.prepared import Upsert, utf8_bytes
from roost.store.schema import event as event_table
from roost.store.schema import message, part, request, session, todo

# Built once: constructing statements per event costs more than executing them.
_FIXED = {
    "session": ("parent_id",),
    "message": ("session_id",),
    "part": ("message_id", "session_id"),
    "request": ("session_id",),
}
"""Indexed columns a row keeps for its life (``prepared.Upsert``: overwriting a row does not
rewrite their index entries while they are unchanged)."""
_UPSERT = {
    t.name: Upsert(t, t.c.id, utf8=("data",), fixed=_FIXED[t.name])
    for t in (session, message, part, request)
}
_UPSERT_TODO = Upsert(todo, todo.c.session_id, utf8=("data",))

ROW_KEY: dict[str, str] = {
    ev.SESSION_CREATED: "info",
    ev.SESSION_UPDATED: "info",
    ev.MESSAGE_UPDATED: "info",
    ev.PART_UPDATED: "part",
}
"""Event type -> the key of ``properties`` whose value a projection row stores whole as JSON."""


def _upsert(conn: Connection, table: Any, row: dict[str, Any]) -> None:
    _UPSERT[table.name].execute(conn, row)


def _session_row(info: dict[str, Any], data: bytes) -> dict[str, Any]:
    return {
        "id": info["id"],
        "parent_id": info.get("parentID"),
        "directory": info.get("directory", ""),
        "title": info.get("title", ""),
        "time_created": info["time"]["created"],
        "time_updated": info["time"]["updated"],
        "data": data,
    }


def apply(
    conn: Connection,
    type_: str,
    props: dict[str, Any],
    row: bytes | None = None,
    *,
    seq: int,
    reference: deltas.Reference | None = None,
) -> None:
    """Fold one event into the projections; events of other types change nothing.

    Args:
        conn: The write transaction's connection.
        type_: The event's wire type.
        props: The event's ``properties``.
        row: ``encode(props[ROW_KEY[type_]])`` when the caller already has it (``Tx.append``
            embeds the same bytes in the event); encoded here when None.
        seq: The event's ``seq`` in its session (a delta marks its part from there on).
        reference: For a ``message.part.updated`` that closes a stream, how the log keeps it
            (``deltas.by_reference``): its row may keep it the same way (``in_row``).
    """
    if type_ not in ev.PROJECTED_TYPES:
        return
    key = ROW_KEY.get(type_)
    if reference is not None and reference.in_row:
        _upsert(
            conn,
            part,
            _part_row(props["part"], reference.part, reference.from_seq, reference.to_seq),
        )
    elif key is not None:
        _upsert_row(conn, type_, props[key], encode(props[key]) if row is None else row)
    elif type_ == ev.SESSION_DELETED:
        session_id = props["sessionID"]
        conn.execute(delete(part).where(part.c.session_id == session_id))
        conn.execute(delete(message).where(message.c.session_id == session_id))
        conn.execute(delete(request).where(request.c.session_id == session_id))
        conn.execute(delete(todo).where(todo.c.session_id == session_id))
        conn.execute(delete(session).where(session.c.id == session_id))
    elif type_ == ev.MESSAGE_REMOVED:
        conn.execute(delete(part).where(part.c.message_id == props["messageID"]))
        conn.execute(delete(message).where(message.c.id == props["messageID"]))
    elif type_ == ev.PART_DELTA:
        deltas.mark(conn, props["sessionID"], props["partID"], seq)
    elif type_ == ev.PART_REMOVED:
        conn.execute(delete(part).where(part.c.id == props["partID"]))
    elif type_ in (ev.PERMISSION_ASKED, ev.QUESTION_ASKED):
        _insert_request(conn, type_, props)
    elif type_ == ev.PERMISSION_REPLIED:
        _close_request(conn, props["requestID"], "replied", props["reply"])
    elif type_ == ev.QUESTION_REPLIED:
        _close_request(conn, props["requestID"], "replied", props["answers"])
    elif type_ == ev.QUESTION_REJECTED:
        _close_request(conn, props["requestID"], "rejected", None)
    elif type_ == ev.TODO_UPDATED:
        _UPSERT_TODO.execute(
            conn, {"session_id": props["sessionID"], "data": encode(props["todos"])}
        )


def _upsert_row(conn: Connection, type_: str, obj: dict[str, Any], data: bytes) -> None:
    """Store a session, message or part (``obj``, the event's ``ROW_KEY`` value) whose JSON
    is ``data``."""
    if type_ == ev.PART_UPDATED:
        _upsert(conn, part, _part_row(obj, data, None, None))  # whole: deltas are in ``data``
    elif type_ == ev.MESSAGE_UPDATED:
        row = {
            "id": obj["id"],
            "session_id": obj["sessionID"],
            "role": obj["role"],
            "time_created": int(obj["time"]["created"]),
            "data": data,
        }
        _upsert(conn, message, row)
    else:
        _upsert(conn, session, _session_row(obj, data))


def _part_row(
    obj: dict[str, Any], data: bytes, from_seq: int | None, to_seq: int | None
) -> dict[str, Any]:
    return {
        "id": obj["id"],
        "message_id": obj["messageID"],
        "session_id": obj["sessionID"],
        "data": data,
        "deltas_from_seq": from_seq,
        "deltas_to_seq": to_seq,
    }


def _insert_request(conn: Connection, type_: str, props: dict[str, Any]) -> None:
    tool = props.get("tool") or {}
    _UPSERT["request"].execute(
        conn,
        {
            "id": props["id"],
            "kind": "permission" if type_ == ev.PERMISSION_ASKED else "question",
            "session_id": props["sessionID"],
            "message_id": tool.get("messageID"),
            "call_id": tool.get("callID"),
            "status": "pending",
            "data": encode(props),
            "reply": None,
        },
    )


def _close_request(conn: Connection, request_id: str, status: str, reply: Any) -> None:
    conn.execute(
        update(request)
        .where(request.c.id == request_id, request.c.status == "pending")
        .values(status=status, reply=orjson.dumps(reply).decode() if reply is not None else None)
    )


def rebuild_projections(conn: Connection, *, batch: int = 2000) -> int:
    """Drop the projections and fold the whole log again, in commit order.

    Returns:
        The number of events folded.
    """
    for table in (part, message, session, request, todo):
        conn.execute(delete(table))
    folded = 0
    after = 0
    while True:
        rows = conn.execute(
            select(
                event_table.c.id,
                event_table.c.session_id,
                event_table.c.seq,
                event_table.c.type,
                utf8_bytes(event_table.c.data).label("data"),
            )
            .where(event_table.c.id > after)
            .order_by(event_table.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return folded
        for r in rows:
            data, reference = deltas.stored_reference(conn, r.session_id, r.seq, r.type, r.data)
            apply(conn, r.type, orjson.loads(data), seq=r.seq, reference=reference)
            folded += 1
        after = rows[-1].id
