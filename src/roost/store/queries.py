"""The read side: sessions, messages and parts from the projections.

Rows come back as their stored wire JSON (``str``), so listing a thousand messages costs no
parse-and-serialize round trip; callers that need fields parse them with ``orjson``. A part
still being streamed is the exception: its row is completed with the deltas from the log
(``deltas.fold``), so a reader sees the text so far.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, select

from roost.store import deltas
from roost.store.prepared import Prepared
from roost.store.schema import message, part, request, session, todo

_SESSION_DATA = Prepared(select(session.c.data).where(session.c.id == bindparam("sid")))
_MESSAGE_SESSION = Prepared(select(message.c.session_id).where(message.c.id == bindparam("mid")))
_PART_EXISTS = Prepared(select(part.c.id).where(part.c.id == bindparam("pid")))
_SESSION_MESSAGES = Prepared(
    select(message.c.id, message.c.data)
    .where(message.c.session_id == bindparam("sid"))
    .order_by(message.c.id)
)
_CONTAINS_PAGE = 100
"""Messages looked at per query by ``message_infos_containing``."""
_NEWEST_FLAGGED = (
    # Each message's JSON when it contains the pattern, else NULL, rather than a filter on it:
    # with the filter in WHERE, PostgreSQL expects few matches and scans the whole session to
    # sort them, where walking the index from the newest message stops at the first page.
    select(
        message.c.id,
        case((message.c.data.like(bindparam("pattern"), escape="\\"), message.c.data)),
    )
    .where(message.c.session_id == bindparam("sid"), message.c.role == bindparam("role"))
    .order_by(message.c.id.desc())
    .limit(_CONTAINS_PAGE)
)
_NEWEST_FLAGGED_FIRST = Prepared(_NEWEST_FLAGGED)
_NEWEST_FLAGGED_BEFORE = Prepared(_NEWEST_FLAGGED.where(message.c.id < bindparam("before")))
_PART_COLUMNS = (
    part.c.message_id,
    part.c.data,
    part.c.id,
    part.c.deltas_from_seq,
    part.c.deltas_to_seq,
)
"""A part row as ``deltas.fold`` takes it."""
_SESSION_PARTS = Prepared(
    select(*_PART_COLUMNS)
    .where(part.c.session_id == bindparam("sid"))
    .order_by(part.c.message_id, part.c.id)
)


_IDS_PER_QUERY = 500
"""Message ids per ``IN (...)`` when reading the parts of a range of messages (SQLite takes at
most 32,766 bound parameters per statement)."""


@dataclass(frozen=True, slots=True)
class MessageRow:
    """One message and its parts, as wire JSON (``Message`` and ``Part`` schemas)."""

    id: str
    info: str
    parts: list[str]


def get_session(conn: Connection, session_id: str) -> str | None:
    """The session's wire JSON, or None."""
    found: str | None = _SESSION_DATA.scalar(conn, {"sid": session_id})
    return found


def list_sessions(
    conn: Connection,
    *,
    roots: bool = False,
    limit: int | None = None,
    search: str | None = None,
    start_ms: int | None = None,
    directory: str | None = None,
) -> list[str]:
    """Sessions, most recently updated first.

    Args:
        roots: Leave out child sessions (those with a ``parentID``).
        limit: At most this many.
        search: Case-insensitive substring of the title.
        start_ms: Only sessions updated at or after this Unix epoch ms.
        directory: Only sessions whose ``directory`` equals this.
    """
    stmt = select(session.c.data).order_by(session.c.time_updated.desc(), session.c.id)
    if roots:
        stmt = stmt.where(session.c.parent_id.is_(None))
    if search:
        stmt = stmt.where(session.c.title.ilike(f"%{search}%"))
    if start_ms is not None:
        stmt = stmt.where(session.c.time_updated >= start_ms)
    if directory:
        stmt = stmt.where(session.c.directory == directory)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(conn.execute(stmt).scalars())


def list_children(conn: Connection, parent_id: str) -> list[str]:
    """Direct children of a session, oldest first."""
    stmt = (
        select(session.c.data)
        .where(session.c.parent_id == parent_id)
        .order_by(session.c.time_created, session.c.id)
    )
    return list(conn.execute(stmt).scalars())


def child_ids(conn: Connection, parent_id: str) -> list[str]:
    """Ids of a session's direct children."""
    return list(
        conn.execute(select(session.c.id).where(session.c.parent_id == parent_id)).scalars()
    )


def list_messages(
    conn: Connection,
    session_id: str,
    *,
    limit: int | None = None,
    before: str | None = None,
    since: str | None = None,
) -> list[MessageRow]:
    """A session's messages with their parts, oldest first.

    Args:
        limit: Only the newest ``limit`` messages (still returned oldest first).
        before: Only messages whose id sorts before this message id (paging backwards).
        since: Only this message and those whose id sorts after it.
    """
    if limit is None and not before and not since:  # the whole session: prepared
        whole = _SESSION_MESSAGES.execute(conn, {"sid": session_id}).fetchall()
        if not whole:
            return []
        every_part = _SESSION_PARTS.execute(conn, {"sid": session_id})
        return _with_parts(whole, deltas.fold(conn, session_id, every_part))
    cond = message.c.session_id == session_id
    if before:
        cond = and_(cond, message.c.id < before)
    if since:
        cond = and_(cond, message.c.id >= since)
    stmt = select(message.c.id, message.c.data).where(cond)
    if limit is not None:
        stmt = stmt.order_by(message.c.id.desc()).limit(limit)
        rows = list(reversed(conn.execute(stmt).all()))
    else:
        rows = list(conn.execute(stmt.order_by(message.c.id)).all())
    if not rows:
        return []
    parts: list[Any] = []  # Row tuples of _PART_COLUMNS
    for start in range(0, len(rows), _IDS_PER_QUERY):
        ids = [r.id for r in rows[start : start + _IDS_PER_QUERY]]
        pstmt = (
            select(*_PART_COLUMNS)
            .where(part.c.message_id.in_(ids))
            .order_by(part.c.message_id, part.c.id)
        )
        parts.extend(conn.execute(pstmt).all())
    return _with_parts(rows, deltas.fold(conn, session_id, parts))


def _with_parts(
    messages: Sequence[Sequence[str]], parts: Iterable[deltas.PartRow]
) -> list[MessageRow]:
    """``MessageRow``s from ``(id, data)`` message rows, in their order, and part rows
    (``deltas.PartRow``) in part order (parts of other messages are ignored)."""
    by_message: dict[str, list[str]] = {mid: [] for mid, _ in messages}
    for mid, data, *_ in parts:
        bucket = by_message.get(mid)
        if bucket is not None:
            bucket.append(data)
    return [MessageRow(mid, info, by_message[mid]) for mid, info in messages]


def get_message(conn: Connection, session_id: str, message_id: str) -> MessageRow | None:
    """One message of a session with its parts, or None."""
    info = conn.execute(
        select(message.c.data).where(message.c.id == message_id, message.c.session_id == session_id)
    ).scalar()
    if info is None:
        return None
    rows = conn.execute(
        select(*_PART_COLUMNS).where(part.c.message_id == message_id).order_by(part.c.id)
    ).all()
    return MessageRow(
        message_id, info, [data for _, data, *_ in deltas.fold(conn, session_id, rows)]
    )


def recent_message_infos(conn: Connection, session_id: str, *, role: str, limit: int) -> list[str]:
    """The newest ``limit`` messages of one role (``Message`` JSON, without parts), newest
    first (uses ``ix_message_session``)."""
    stmt = (
        select(message.c.data)
        .where(message.c.session_id == session_id, message.c.role == role)
        .order_by(message.c.id.desc())
        .limit(limit)
    )
    return list(conn.execute(stmt).scalars())


def message_infos_containing(
    conn: Connection, session_id: str, *, role: str, needle: str
) -> Iterator[str]:
    """The messages of one role whose stored ``Message`` JSON contains ``needle``, newest first
    (``Message`` JSON, without parts), read as the caller iterates: the database tests each
    message (``LIKE``, case-insensitive for ASCII on SQLite), ``_CONTAINS_PAGE`` at a time
    from the newest, and only the JSON of those containing it comes back, so a caller that stops
    at the first one costs the messages down to it. Callers check what they get."""
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    params = {"sid": session_id, "role": role, "pattern": f"%{escaped}%"}
    page = _NEWEST_FLAGGED_FIRST.execute(conn, params).fetchall()
    while page:
        for _, data in page:
            if data is not None:
                yield data
        if len(page) < _CONTAINS_PAGE:
            return
        page = _NEWEST_FLAGGED_BEFORE.execute(conn, {**params, "before": page[-1][0]}).fetchall()


def message_session(conn: Connection, message_id: str) -> str | None:
    """The session a message belongs to, or None when it does not exist."""
    found: str | None = _MESSAGE_SESSION.scalar(conn, {"mid": message_id})
    return found


def first_taken_part_id(conn: Connection, part_ids: list[str]) -> str | None:
    """The first of ``part_ids`` that some stored part already has, or None."""
    for pid in part_ids:
        if _PART_EXISTS.scalar(conn, {"pid": pid}) is not None:
            return pid
    return None


def part_ids(conn: Connection, message_id: str) -> list[str]:
    """Ids of a message's parts."""
    return list(conn.execute(select(part.c.id).where(part.c.message_id == message_id)).scalars())


@dataclass(frozen=True, slots=True)
class RequestRow:
    """A permission or question request (``data`` is its wire JSON)."""

    id: str
    kind: str
    session_id: str
    message_id: str | None
    status: str
    data: str


def pending_requests(
    conn: Connection, kind: str | None = None, session_id: str | None = None
) -> list[RequestRow]:
    """Requests still waiting for a reply, oldest first (uses ``ix_request_status``)."""
    stmt = select(request).where(request.c.status == "pending")
    if kind is not None:
        stmt = stmt.where(request.c.kind == kind)
    if session_id is not None:
        stmt = stmt.where(request.c.session_id == session_id)
    return [
        RequestRow(r.id, r.kind, r.session_id, r.message_id, r.status, r.data)
        for r in conn.execute(stmt.order_by(request.c.id))
    ]


def get_request(conn: Connection, request_id: str) -> RequestRow | None:
    """One request, or None."""
    r = conn.execute(select(request).where(request.c.id == request_id)).first()
    if r is None:
        return None
    return RequestRow(r.id, r.kind, r.session_id, r.message_id, r.status, r.data)


def get_todos(conn: Connection, session_id: str) -> str:
    """The session's todo list as JSON (``[]`` when it has none)."""
    found = conn.execute(select(todo.c.data).where(todo.c.session_id == session_id)).scalar()
    return found or "[]"
