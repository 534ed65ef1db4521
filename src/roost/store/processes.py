"""Process groups started by tool calls, recorded so recovery can kill what a dead owner left."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select

from roost.store.event_log import now_ms
from roost.store.schema import run_process


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """One recorded process group."""

    owner: str
    pgid: int
    run_id: str
    session_id: str
    call_id: str | None
    start_ticks: str | None


def record(
    conn: Connection,
    owner: str,
    pgid: int,
    run_id: str,
    session_id: str,
    call_id: str | None,
    start_ticks: str | None,
) -> None:
    """Remember a process group (replacing a stale row with the same owner and pgid)."""
    conn.execute(
        delete(run_process).where(run_process.c.owner == owner, run_process.c.pgid == pgid)
    )
    conn.execute(
        insert(run_process),
        {
            "owner": owner,
            "pgid": pgid,
            "run_id": run_id,
            "session_id": session_id,
            "call_id": call_id,
            "start_ticks": start_ticks,
            "time_created": now_ms(),
        },
    )


def forget(conn: Connection, owner: str, pgid: int) -> None:
    """The group has exited (or was killed)."""
    conn.execute(
        delete(run_process).where(run_process.c.owner == owner, run_process.c.pgid == pgid)
    )


def of_run(conn: Connection, run_id: str) -> list[ProcessRow]:
    """Groups recorded for a run (uses ``ix_run_process_run``)."""
    rows = conn.execute(select(run_process).where(run_process.c.run_id == run_id))
    return [
        ProcessRow(r.owner, r.pgid, r.run_id, r.session_id, r.call_id, r.start_ticks) for r in rows
    ]


def all_rows(conn: Connection) -> list[ProcessRow]:
    """Every recorded group (small: only groups of live or orphaned runs)."""
    rows = conn.execute(select(run_process))
    return [
        ProcessRow(r.owner, r.pgid, r.run_id, r.session_id, r.call_id, r.start_ticks) for r in rows
    ]
