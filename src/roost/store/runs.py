"""Run bookkeeping: admitted prompts waiting for, or answered by, a turn.

A run is created ``queued`` in the admission transaction, beside the user message it answers,
so an admitted prompt can never be forgotten: at start-up every ``queued`` run is picked up
again. Status moves ``queued → running → completed | failed | aborted | interrupted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from roost.store.event_log import now_ms
from roost.store.prepared import Prepared
from roost.store.schema import run

QUEUED: Final = "queued"
RUNNING: Final = "running"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
ABORTED: Final = "aborted"
INTERRUPTED: Final = "interrupted"
OPEN_STATUSES: Final = (QUEUED, RUNNING)

_INSERT = Prepared(
    insert(run),
    keys=(
        "id",
        "session_id",
        "message_id",
        "status",
        "request",
        "assistant_message_id",
        "time_created",
        "time_updated",
    ),
)
_STATUS = Prepared(select(run.c.status).where(run.c.id == bindparam("rid")))
_SET_STATUS = Prepared(
    update(run)
    .where(run.c.id == bindparam("rid"))
    .values(
        status=bindparam("status"),
        time_updated=bindparam("at"),
        # A NULL ``reply`` keeps the assistant message already recorded.
        assistant_message_id=func.coalesce(bindparam("reply"), run.c.assistant_message_id),
    )
)


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run.

    Attributes:
        request: What the turn needs beyond the stored message: ``agent``, ``providerID``,
            ``modelID``, ``system``, ``tools``.
    """

    id: str
    session_id: str
    message_id: str
    status: str
    request: dict[str, Any]
    assistant_message_id: str | None
    time_created: int


def _row(r: Any) -> RunRow:
    return RunRow(
        r.id,
        r.session_id,
        r.message_id,
        r.status,
        orjson.loads(r.request),
        r.assistant_message_id,
        r.time_created,
    )


def insert_run(
    conn: Connection, run_id: str, session_id: str, message_id: str, request: dict[str, Any]
) -> None:
    """Record a queued run for an admitted user message."""
    at = now_ms()
    _INSERT.execute(
        conn,
        {
            "id": run_id,
            "session_id": session_id,
            "message_id": message_id,
            "status": QUEUED,
            "request": orjson.dumps(request).decode(),
            "assistant_message_id": None,
            "time_created": at,
            "time_updated": at,
        },
    )


def set_status(
    conn: Connection, run_id: str, status: str, *, assistant_message_id: str | None = None
) -> None:
    """Move a run to ``status`` (and remember its assistant message, when given)."""
    _SET_STATUS.execute(
        conn, {"rid": run_id, "status": status, "at": now_ms(), "reply": assistant_message_id}
    )


def status_of(conn: Connection, run_id: str) -> str | None:
    """The run's status, or None when there is no such run."""
    found: str | None = _STATUS.scalar(conn, {"rid": run_id})
    return found


def get_run(conn: Connection, run_id: str) -> RunRow | None:
    """One run, or None."""
    r = conn.execute(select(run).where(run.c.id == run_id)).first()
    return _row(r) if r is not None else None


def run_for_message(conn: Connection, message_id: str) -> RunRow | None:
    """The run admitted with this user message, or None."""
    r = conn.execute(select(run).where(run.c.message_id == message_id)).first()
    return _row(r) if r is not None else None


def open_runs(conn: Connection, session_id: str | None = None) -> list[RunRow]:
    """Queued and running runs, oldest first (uses ``ix_run_status``)."""
    stmt = select(run).where(run.c.status.in_(OPEN_STATUSES))
    if session_id is not None:
        stmt = select(run).where(run.c.session_id == session_id, run.c.status.in_(OPEN_STATUSES))
    return [_row(r) for r in conn.execute(stmt.order_by(run.c.time_created, run.c.id))]


def delete_session_runs(conn: Connection, session_id: str) -> None:
    """Forget every run of a deleted session."""
    conn.execute(delete(run).where(run.c.session_id == session_id))
