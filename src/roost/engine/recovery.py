"""Recovery: finishing runs whose owner died, so that nothing stays busy or half-written.

A run is orphaned when its lease expired (its owner stopped renewing) or, at start-up, when its
owner is provably dead on this host (``owner.is_provably_dead``), or when it is ``running``
with no lease at all (a database from before leases). A lease this process still holds is never
orphaned, even past its stored expiry: its turn is alive and records its own outcome (the store
refused the renewals, see ``heartbeat``).

Each orphan gets the reason that the recovering process knows, decided where the orphan is
found (``_orphans``): "server restarted" at start-up for a run whose owner process is gone (this
process is its restart), "server stopped" later for a run whose owner process on this host is
gone, "lease lost" for a lease that expired while its owner may still live (another host, a
hung process, an owner cut off from the store). Turns that stop in a live process record their
own reason with their outcome (``RunManager``: "server stopped" on shutdown, "storage error"
when the store refused writes), so recovery never claims a restart that did not happen.

For each orphaned run, in one transaction that first takes the lease over (a newer generation
fences the old owner):

- assistant messages of the run that were not completed get ``error`` "interrupted: <reason>"
  and a completion time; their non-terminal tool parts become ``error`` with the same text, and
  open text/reasoning parts get an end time;
- the session's pending permission and question requests are closed (they become errors: the
  tool call that waited for them is gone);
- the run is queued again, so the turn resumes after the restart: the next provider request
  sees every interrupted tool call answered with an error, so call/result pairs stay valid. A
  run recovered ``max_recoveries`` times ends with a visible error instead of looping;
- the session goes idle (``session.error``, ``session.status`` idle, ``session.idle``), and
  the lease is released.

Afterwards the process groups the run's tool calls had started are killed if they still live.
Recovery reads only indexes (``run_lease`` by expiry, ``run`` by status), never whole tables.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio.to_thread
import orjson
from sqlalchemy import Connection, select

from roost.engine import chaos, daemons
from roost.engine.owner import is_provably_dead, same_host, start_ticks
from roost.model import event as ev
from roost.model import message as msg
from roost.model.part import close_open_tool
from roost.model.session import IDLE
from roost.store import leases, processes, queries, runs
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms, store_now_ms
from roost.store.schema import run_recovery

log = logging.getLogger(__name__)

SERVER_RESTARTED: Final = "server restarted"
SERVER_STOPPED: Final = "server stopped"
LEASE_LOST: Final = "lease lost"
STORAGE_ERROR: Final = "storage error"
KILL_GRACE_S = 1.0

Holds = Callable[[str, int], bool]
"""``holds(session_id, generation)``: whether this process still holds that lease."""


def interrupted(reason: str) -> str:
    """The error text of a turn cut short: ``interrupted: <reason>``."""
    return f"interrupted: {reason}"


def _reason(lease_owner: str, startup: bool) -> str:
    """Why a lease of ``lease_owner`` was orphaned, as far as this process can tell."""
    if is_provably_dead(lease_owner):
        return SERVER_RESTARTED if startup else SERVER_STOPPED
    return LEASE_LOST


@dataclass(frozen=True)
class Recovered:
    """What recovery did to one run."""

    run_id: str
    session_id: str
    resumed: bool
    killed_groups: int


def _orphans(
    conn: Connection, owner: str, startup: bool, holds: Holds | None
) -> list[tuple[str, str, str]]:
    """(session id, run id, reason) of orphaned runs."""
    found: dict[str, tuple[str, str]] = {}
    at = store_now_ms(conn)
    expired, live = leases.expired(conn, at), leases.live(conn, at)
    for lease in expired:
        if lease.owner == owner and holds is not None and holds(lease.session_id, lease.generation):
            continue  # its turn is alive here; the store refused the renewals
        found[lease.session_id] = (lease.run_id, _reason(lease.owner, startup))
    if startup:
        for lease in live:
            if lease.owner != owner and is_provably_dead(lease.owner):
                found[lease.session_id] = (lease.run_id, SERVER_RESTARTED)
    leased = {lease.session_id for lease in (*live, *expired)}
    for run in runs.open_runs(conn):
        if run.status == runs.RUNNING and run.session_id not in leased:
            found.setdefault(run.session_id, (run.id, SERVER_RESTARTED if startup else LEASE_LOST))
    return [(sid, run_id, reason) for sid, (run_id, reason) in found.items()]


def _finish_parts(tx: Tx, session_id: str, run: runs.RunRow, text: str) -> dict[str, Any] | None:
    """Close the run's open messages and parts with the error ``text``; returns the last
    interrupted message."""
    error = msg.unknown_error(text)
    last = None
    end = now_ms()
    for row in queries.list_messages(tx.conn, session_id):
        info = orjson.loads(row.info)
        if info.get("role") != "assistant" or info.get("parentID") != run.message_id:
            continue
        if "completed" in info.get("time", {}):
            continue
        for raw in row.parts:
            part = orjson.loads(raw)
            closed = close_open_tool(part, text, end)
            if closed is not None:
                tx.append(session_id, ev.PART_UPDATED, {"sessionID": session_id, "part": closed})
            elif part.get("type") in ("text", "reasoning") and "end" not in part.get("time", {}):
                part.setdefault("time", {"start": end})["end"] = end
                tx.append(session_id, ev.PART_UPDATED, {"sessionID": session_id, "part": part})
        info["time"]["completed"] = end
        info["error"] = error
        tx.append(session_id, ev.MESSAGE_UPDATED, {"sessionID": session_id, "info": info})
        last = info
    return last


def _host(owner: str) -> str:
    """The host name in an owner id (``host/boot/pid/start``)."""
    return owner.split("/", 1)[0]


def _unstoppable(groups: list[processes.ProcessRow]) -> str:
    """What the interrupted tool parts add when some of the run's process groups live on
    another host, which this process cannot signal: ``"; could not be stopped: host H"``."""
    hosts = sorted({_host(g.owner) for g in groups if not same_host(g.owner)})
    return f"; could not be stopped: host {', '.join(hosts)}" if hosts else ""


def _bump_recoveries(conn: Connection, run_id: str) -> int:
    count = conn.execute(
        select(run_recovery.c.count).where(run_recovery.c.run_id == run_id)
    ).scalar()
    new = (count or 0) + 1
    if count is None:
        conn.execute(run_recovery.insert(), {"run_id": run_id, "count": new})
    else:
        conn.execute(run_recovery.update().where(run_recovery.c.run_id == run_id).values(count=new))
    return new


async def recover_run(
    db: Database,
    session_id: str,
    run_id: str,
    *,
    owner: str,
    ttl_ms: int,
    max_recoveries: int,
    reason: str = SERVER_RESTARTED,
    holds: Holds | None = None,
) -> Recovered | None:
    """Recover one orphaned run (see the module docstring); None if it was not orphaned.

    Args:
        reason: Why it was orphaned (``SERVER_RESTARTED``, ``SERVER_STOPPED``, ``LEASE_LOST``,
            ``STORAGE_ERROR``); the interrupted parts and messages say it.
        holds: This process's held leases, checked again in the recovering transaction.
    """
    text = interrupted(reason)

    def write(tx: Tx) -> tuple[bool, list[processes.ProcessRow]] | None:
        run = runs.get_run(tx.conn, run_id)
        lease = leases.get(tx.conn, session_id)
        if lease is not None and lease.run_id != run_id and lease.is_live(store_now_ms(tx.conn)):
            return None  # another run holds the session now
        if (
            lease is not None
            and lease.owner == owner
            and holds is not None
            and holds(session_id, lease.generation)
        ):
            return None  # its turn is alive in this process
        if run is None or run.status != runs.RUNNING:
            if lease is not None:
                leases.release(tx.conn, session_id, lease.generation)
            return None
        taken = leases.acquire(tx.conn, session_id, run_id, owner, ttl_ms, takeover=True)
        groups = processes.of_run(tx.conn, run_id)
        last = _finish_parts(tx, session_id, run, text + _unstoppable(groups))
        for request in queries.pending_requests(tx.conn, session_id=session_id):
            if request.kind == "permission":
                tx.append(
                    session_id,
                    ev.PERMISSION_REPLIED,
                    {"sessionID": session_id, "requestID": request.id, "reply": "reject"},
                )
            else:
                tx.append(
                    session_id,
                    ev.QUESTION_REJECTED,
                    {"sessionID": session_id, "requestID": request.id},
                )
        count = _bump_recoveries(tx.conn, run_id)
        # A call the user made (a shell command, a command's task) is never made again by
        # itself: it may have had effects.
        shell = "call" in run.request
        resumed = count <= max_recoveries and not shell
        if resumed:
            runs.set_status(tx.conn, run_id, runs.QUEUED)
            error = (last or {}).get("error") or msg.unknown_error(text)
        elif shell:
            runs.set_status(tx.conn, run_id, runs.FAILED)
            error = (last or {}).get("error") or msg.unknown_error(text)
        else:
            runs.set_status(tx.conn, run_id, runs.FAILED)
            error = msg.unknown_error(
                f"the turn was interrupted {count} times (last: {reason}); it is not resumed again"
            )
        tx.append(session_id, ev.SESSION_ERROR, {"sessionID": session_id, "error": error})
        tx.append(session_id, ev.SESSION_STATUS, {"sessionID": session_id, "status": IDLE})
        tx.append(session_id, ev.SESSION_IDLE, {"sessionID": session_id})
        leases.release(tx.conn, session_id, taken.generation)
        return resumed, groups

    outcome = await db.write(write)
    if outcome is None:
        return None
    chaos.cut("mid-recovery")
    resumed, groups = outcome
    killed = 0
    for group in groups:
        if not same_host(group.owner):
            # Only a process on its own host can signal it: the row stays, so a replica there
            # (or the owner restarted) kills it in its start-up sweep.
            log.warning(
                "run %s: process group %d on %s could not be stopped",
                run_id,
                group.pgid,
                _host(group.owner),
            )
            continue
        if await anyio.to_thread.run_sync(kill_group, group):
            killed += 1
        await db.write(_forget(group))
    log.warning(
        "recovered run %s of %s (%s; resumed=%s, killed %d process groups)",
        run_id,
        session_id,
        reason,
        resumed,
        killed,
    )
    return Recovered(run_id, session_id, resumed, killed)


def _forget(group: processes.ProcessRow) -> Any:
    def write(tx: Tx) -> None:
        processes.forget(tx.conn, group.owner, group.pgid)

    return write


async def recover_orphaned_runs(
    db: Database,
    *,
    owner: str,
    ttl_ms: int,
    max_recoveries: int,
    startup: bool,
    holds: Holds | None = None,
) -> list[Recovered]:
    """Recover every orphaned run; returns what was done, one entry per run.

    At start-up it also sweeps process groups recorded by owners that are provably dead (a
    crash between a recovery's commit and its kills would otherwise leave them running).

    Args:
        holds: This process's held leases, which are never recovered (see module docstring).
    """
    orphans = await db.read(lambda c: _orphans(c, owner, startup, holds))
    done = []
    for session_id, run_id, reason in orphans:
        result = await recover_run(
            db,
            session_id,
            run_id,
            owner=owner,
            ttl_ms=ttl_ms,
            max_recoveries=max_recoveries,
            reason=reason,
            holds=holds,
        )
        if result is not None:
            done.append(result)
    if startup:
        await sweep_processes(db, owner)
        # Processes that left their recorded groups, started by servers that died.
        await anyio.to_thread.run_sync(daemons.kill_tagged, is_provably_dead)
    return done


async def sweep_processes(db: Database, owner: str) -> int:
    """Kill and forget process groups whose recording owner is dead; returns how many."""
    rows = await db.read(processes.all_rows)
    killed = 0
    for group in rows:
        if group.owner == owner or not is_provably_dead(group.owner):
            continue
        if await anyio.to_thread.run_sync(kill_group, group):
            killed += 1
        await db.write(_forget(group))
    return killed


def group_alive(pgid: int) -> bool:
    """Whether any process is still in the group."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_group(group: processes.ProcessRow) -> bool:
    """Kill a recorded group if it is still ours: SIGTERM, then SIGKILL after a grace.

    A group is ours when it was recorded on this host and boot and its leader's pid is either
    gone or still has the recorded start time (a recycled pid has another one).

    Returns:
        True when a signal was sent.
    """
    if not same_host(group.owner) or not group_alive(group.pgid):
        return False
    leader = start_ticks(group.pgid)
    if leader is not None and group.start_ticks is not None and leader != group.start_ticks:
        return False  # the pid was recycled by an unrelated process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group.pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline and daemons.group_running(group.pgid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group.pgid, signal.SIGKILL)
    return True
