"""Folds one event into the session, message and part projections.

``apply`` is the only code that writes projection rows; the live path (``Tx.append``) and
``rebuild_projections`` both call it, so a rebuild from the log equals the live state. Payloads
are OpenCode's v1 event ``properties`` (``EventSession*``, ``EventMessage*`` schemas).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, select, update

from roost.model import event as ev
from roost.store.prepared import Prepared, upsert
from roost.store.schema import event as event_table
from roost.store.schema import message, part, request, session, todo

# Built once: constructing statements per event costs more than executing them.
_UPSERT = {t.name: upsert(t, t.c.id) for t in (session, message, part, request)}
_UPSERT_TODO = upsert(todo, todo.c.session_id)
_PART_DATA = Prepared(select(part.c.data).where(part.c.id == bindparam("pid")))
_SET_PART_DATA = Prepared(
    update(part).where(part.c.id == bindparam("pid")).values(data=bindparam("data"))
)


def _upsert(conn: Connection, table: Any, row: dict[str, Any]) -> None:
    _UPSERT[table.name].execute(conn, row)


def _session_row(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": info["id"],
        "parent_id": info.get("parentID"),
        "directory": info.get("directory", ""),
        "title": info.get("title", ""),
        "time_created": info["time"]["created"],
        "time_updated": info["time"]["updated"],
        "data": orjson.dumps(info).decode(),
    }


def apply(conn: Connection, type_: str, props: dict[str, Any]) -> None:
    """Fold one event into the projections; events of other types change nothing."""
    if type_ not in ev.PROJECTED_TYPES:
        return
    if type_ in (ev.SESSION_CREATED, ev.SESSION_UPDATED):
        _upsert(conn, session, _session_row(props["info"]))
    elif type_ == ev.SESSION_DELETED:
        session_id = props["sessionID"]
        conn.execute(delete(part).where(part.c.session_id == session_id))
        conn.execute(delete(message).where(message.c.session_id == session_id))
        conn.execute(delete(request).where(request.c.session_id == session_id))
        conn.execute(delete(todo).where(todo.c.session_id == session_id))
        conn.execute(delete(session).where(session.c.id == session_id))
    elif type_ == ev.MESSAGE_UPDATED:
        info = props["info"]
        _upsert(
            conn,
            message,
            {
                "id": info["id"],
                "session_id": info["sessionID"],
                "role": info["role"],
                "time_created": int(info["time"]["created"]),
                "data": orjson.dumps(info).decode(),
            },
        )
    elif type_ == ev.MESSAGE_REMOVED:
        conn.execute(delete(part).where(part.c.message_id == props["messageID"]))
        conn.execute(delete(message).where(message.c.id == props["messageID"]))
    elif type_ == ev.PART_UPDATED:
        p = props["part"]
        _upsert(
            conn,
            part,
            {
                "id": p["id"],
                "message_id": p["messageID"],
                "session_id": p["sessionID"],
                "data": orjson.dumps(p).decode(),
            },
        )
    elif type_ == ev.PART_DELTA:
        _apply_delta(conn, props)
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
            conn, {"session_id": props["sessionID"], "data": orjson.dumps(props["todos"]).decode()}
        )


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
            "data": orjson.dumps(props).decode(),
            "reply": None,
        },
    )


def _close_request(conn: Connection, request_id: str, status: str, reply: Any) -> None:
    conn.execute(
        update(request)
        .where(request.c.id == request_id, request.c.status == "pending")
        .values(status=status, reply=orjson.dumps(reply).decode() if reply is not None else None)
    )


def _apply_delta(conn: Connection, props: dict[str, Any]) -> None:
    found = _PART_DATA.scalar(conn, {"pid": props["partID"]})
    if found is None:
        return  # the part was removed; a late delta changes nothing
    data = orjson.loads(found)
    field = props["field"]
    data[field] = (data.get(field) or "") + props["delta"]
    _SET_PART_DATA.execute(conn, {"pid": props["partID"], "data": orjson.dumps(data).decode()})


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
            select(event_table.c.id, event_table.c.type, event_table.c.data)
            .where(event_table.c.id > after)
            .order_by(event_table.c.id)
            .limit(batch)
        ).all()
        if not rows:
            return folded
        for r in rows:
            apply(conn, r.type, orjson.loads(r.data))
            folded += 1
        after = rows[-1].id
