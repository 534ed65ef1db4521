"""``roost doctor [--repair] [--db PATH]``: check the store's invariants offline, and repair.

Checks (``store/invariants.py``): ``seq`` gapless per session; no run ``running`` without a
live lease; no non-terminal part or uncompleted assistant message outside a live run; no pending
permission/question request without a live run; no recorded tool process group left alive by
a dead server. Queued prompts are listed, not repaired: the next ``roost serve`` runs them.

``--repair`` does what a starting server's recovery does, and reports each action: orphaned
runs are finished (parts and messages marked interrupted, resumed or failed), stale requests
are closed, and process groups of dead servers are killed. A ``seq`` gap cannot be repaired:
it is reported (it would mean the log itself was edited).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.console import Console

from roost.engine.owner import is_provably_dead, this_owner
from roost.engine.recovery import group_alive, recover_orphaned_runs, sweep_processes
from roost.engine.requests import RequestBroker
from roost.store import invariants, runs
from roost.store.database import Database


async def doctor(db_path: Path | str, *, repair: bool, console: Console) -> int:
    """Check (and optionally repair) the database; returns the exit code (0: healthy)."""
    db = await Database.open(db_path)
    try:
        report = await _check(db)
        _print(console, "Check", report)
        if repair and not report.ok:
            owner = f"doctor:{this_owner()}"
            recovered = await recover_orphaned_runs(
                db, owner=owner, ttl_ms=1, max_recoveries=3, startup=True
            )
            for item in recovered:
                verb = "resumed (queued for the next start)" if item.resumed else "failed"
                console.print(
                    f"repaired: run {item.run_id} of {item.session_id} {verb}, "
                    f"{item.killed_groups} process groups killed"
                )
            broker = RequestBroker(db)
            for line in report.violations.get("no pending request without a live run", []):
                session_id = line.split(" of ", 1)[1].split(" ", 1)[0]
                closed = await broker.cancel(session_id)
                console.print(f"repaired: closed {closed} pending requests of {session_id}")
            killed = await sweep_processes(db, owner)
            if killed:
                console.print(f"repaired: killed {killed} process groups of dead servers")
            report = await _check(db)
            _print(console, "After repair", report)
        queued = await db.read(lambda c: [r for r in runs.open_runs(c) if r.status == runs.QUEUED])
        if queued:
            console.print(f"{len(queued)} queued prompts will run when a server starts")
        return 0 if report.ok else 1
    finally:
        await db.close()


async def _check(db: Database) -> invariants.Report:
    report = await db.read(lambda c: invariants.check(c, settled=False, dead=is_provably_dead))
    groups = await db.read(invariants.recorded_processes)
    report.add(
        "no tool process group left by a dead server",
        [
            f"process group {g.pgid} of run {g.run_id} (owner {g.owner}) is still alive"
            for g in groups
            if is_provably_dead(g.owner) and group_alive(g.pgid)
        ],
    )
    return report


def _print(console: Console, title: str, report: invariants.Report) -> None:
    console.print(f"[bold]{title}[/bold]: {report.count()} violations")
    for name, found in report.violations.items():
        mark = "[green]ok[/green]" if not found else f"[red]{len(found)}[/red]"
        console.print(f"  {mark}  {name}")
        for line in found[:20]:
            console.print(f"       - {line}")


def run_doctor(db_path: Path | str, *, repair: bool) -> int:
    """Blocking entry point used by the CLI."""
    console = Console()
    if isinstance(db_path, Path) and not db_path.exists():
        console.print(f"[red]no database at {db_path}[/red]")
        return 2
    return asyncio.run(doctor(db_path, repair=repair, console=console))
