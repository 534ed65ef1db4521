"""Read-only checks of the store's invariants, for ``roost doctor`` and the crash harness.

Each check returns violations as readable strings; an empty list means the invariant holds.
They read indexes and the small command-side tables (leases, runs by status, pending requests,
recorded processes), except the ``seq`` check, which aggregates the event log once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Connection, func, select

from roost.model.part import is_open_tool
from roost.store import leases, processes, queries, runs
from roost.store.event_log import store_now_ms
from roost.store.schema import event


@dataclass
class Report:
    """Violations by invariant name."""

    violations: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, found: list[str]) -> None:
        self.violations[name] = found

    @property
    def ok(self) -> bool:
        """No invariant is violated."""
        return not any(self.violations.values())

    def count(self) -> int:
        """Total violations."""
        return sum(len(v) for v in self.violations.values())


def seq_gaps(conn: Connection) -> list[str]:
    """Sessions whose ``seq`` is not exactly 1..n."""
    rows = conn.execute(
        select(
            event.c.session_id, func.count(), func.min(event.c.seq), func.max(event.c.seq)
        ).group_by(event.c.session_id)
    ).all()
    return [
        f"{sid}: {n} events with seq {lo}..{hi}" for sid, n, lo, hi in rows if lo != 1 or hi != n
    ]


OwnerDead = Callable[[str], bool]
"""Tells whether a lease owner is known to be dead (its lease is then not live)."""


def _never_dead(owner: str) -> bool:
    return False


def _live_sessions(conn: Connection, dead: OwnerDead = _never_dead) -> set[str]:
    return {
        lease.session_id for lease in leases.live(conn, store_now_ms(conn)) if not dead(lease.owner)
    }


def orphaned_runs(conn: Connection, dead: OwnerDead = _never_dead) -> list[str]:
    """Runs marked running without a live lease (recovery has not finished them)."""
    live = _live_sessions(conn, dead)
    return [
        f"run {r.id} of {r.session_id} is running without a live lease"
        for r in runs.open_runs(conn)
        if r.status == runs.RUNNING and r.session_id not in live
    ]


def open_parts_without_lease(conn: Connection, dead: OwnerDead = _never_dead) -> list[str]:
    """Non-terminal tool parts and uncompleted assistant messages outside a live run."""
    live = _live_sessions(conn, dead)
    found = []
    suspects = {r.session_id for r in runs.open_runs(conn)} | {
        r.session_id for r in queries.pending_requests(conn)
    }
    suspects |= _sessions_with_open_parts(conn)
    for sid in sorted(suspects - live):
        for row in queries.list_messages(conn, sid):
            info = orjson.loads(row.info)
            if info["role"] == "assistant" and "completed" not in info.get("time", {}):
                found.append(f"message {row.id} of {sid} never completed")
            for raw in row.parts:
                part = orjson.loads(raw)
                if is_open_tool(part):
                    found.append(f"tool part {part['id']} of {sid} left {part['state']['status']}")
    return found


def _sessions_with_open_parts(conn: Connection) -> set[str]:
    # Parts are stored as JSON; the cheap filter is a LIKE on the state, then exact parsing.
    from roost.store.schema import part

    rows = conn.execute(
        select(part.c.session_id)
        .where(part.c.data.like('%"status":"running"%') | part.c.data.like('%"status":"pending"%'))
        .distinct()
    )
    return {r[0] for r in rows}


def unanswered_prompts(conn: Connection, dead: OwnerDead = _never_dead) -> list[str]:
    """Admitted prompts whose run is still queued or running with no live lease."""
    live = _live_sessions(conn, dead)
    return [
        f"prompt {r.message_id} of {r.session_id} is {r.status}"
        for r in runs.open_runs(conn)
        if r.session_id not in live
    ]


def stale_requests(conn: Connection, dead: OwnerDead = _never_dead) -> list[str]:
    """Pending permission/question requests whose session has no live run."""
    live = _live_sessions(conn, dead)
    return [
        f"{r.kind} request {r.id} of {r.session_id} pending with no live run"
        for r in queries.pending_requests(conn)
        if r.session_id not in live
    ]


def recorded_processes(conn: Connection) -> list[processes.ProcessRow]:
    """Process groups still recorded (their runs may be gone)."""
    return processes.all_rows(conn)


def check(conn: Connection, *, settled: bool = True, dead: OwnerDead = _never_dead) -> Report:
    """Run every check.

    Args:
        settled: No server is running (or it has gone idle), so a queued prompt is a
            violation too.
        dead: Owners known to be dead; their unexpired leases do not count as live.
    """
    report = Report()
    report.add("seq gapless per session", seq_gaps(conn))
    report.add("no run running without a live lease", orphaned_runs(conn, dead))
    report.add("no non-terminal part without a live lease", open_parts_without_lease(conn, dead))
    if settled:
        report.add(
            "every admitted prompt answered or visibly failed", unanswered_prompts(conn, dead)
        )
    report.add("no pending request without a live run", stale_requests(conn, dead))
    return report
