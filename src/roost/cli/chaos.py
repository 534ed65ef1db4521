"""``roost chaos``: SIGKILL a real ``roost serve`` at named cut points, restart it, check.

Each round starts a server armed with ``ROOST_CHAOS_CUT`` (``engine/chaos.py``), drives a
session into the cut point with the scripted LLM (``roost.testing.scripted_llm``), and waits
for the server to kill itself there. A round whose server did not die at the point counts as a
miss, so a harness that never fires cannot pass. Then the server is restarted unarmed on the
same database, the session is waited on until it settles, and the invariants are checked:

- no session busy without a live lease (``GET /session/status`` against ``run_lease``);
- no non-terminal part and no uncompleted message without a live lease;
- every admitted prompt answered or visibly failed;
- ``seq`` gapless per session;
- no orphaned tool processes (recorded groups of dead servers, and the round's own ``sleep``);
- valid tool-call pairing in every provider request (each call answered exactly once).

``mid-recovery`` rounds first leave an orphan (a kill at ``mid-tool``), then kill the server in
the middle of recovering it; both kills count.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from roost.engine.chaos import CUT_POINTS
from roost.engine.owner import is_provably_dead
from roost.engine.recovery import group_alive
from roost.store import invariants, leases, runs
from roost.store.location import parse
from roost.testing.scripted_llm import AUX_MODEL, Delay, ScriptedLLM, Text, Turn, tool_turn

_READY_TIMEOUT_S = 30.0
_DEATH_TIMEOUT_S = 20.0
_SETTLE_TIMEOUT_S = 30.0
QUESTION = {
    "questions": [
        {"question": "Go on?", "header": "Go", "options": [{"label": "Yes", "description": "go"}]}
    ]
}


@dataclass
class Tally:
    """What happened, per cut point."""

    landed: Counter[str] = field(default_factory=Counter)
    missed: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def land(self, point: str, ok: bool) -> None:
        with self.lock:
            (self.landed if ok else self.missed)[point] += 1


class _Server:
    def __init__(self, project: Path, db: Path | str) -> None:
        self.project, self.db = project, db
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.port = 0
        """Picked at the first start; every restart reuses it, as an operator's would."""
        self.stderr = ""

    def start(self, cut: str | None = None, *, dies_starting: bool = False) -> None:
        """Start the server; with ``dies_starting`` (a cut during start-up recovery) do not
        wait for it to listen."""
        env = {**os.environ, "XDG_CONFIG_HOME": str(self.project / ".xdg")}
        env.pop("ROOST_CHAOS_CUT", None)
        if cut:
            env["ROOST_CHAOS_CUT"] = cut
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "roost", "serve"),
                *("--port", str(self.port), "--db", str(self.db)),
            ],
            cwd=self.project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        if dies_starting:
            return
        timer = threading.Timer(_READY_TIMEOUT_S, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if "listening on " not in line:
            raise RuntimeError(
                f"server did not start: {self.proc.stderr.read() if self.proc.stderr else ''}"
            )
        self.url = line.rsplit("listening on ", 1)[1].strip()
        self.port = int(self.url.rsplit(":", 1)[1])

    def wait_death(self) -> bool:
        """Whether the server killed itself at its cut point (SIGKILL) in time."""
        assert self.proc is not None
        try:
            code = self.proc.wait(timeout=_DEATH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return False
        self.stderr = self.proc.stderr.read() if self.proc.stderr else ""
        return code == -signal.SIGKILL and "roost chaos: SIGKILL at" in self.stderr

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _script(point: str, llm: ScriptedLLM, pid_file: Path) -> None:
    if point == "mid-stream":
        llm.enqueue(
            Turn(
                [
                    Text("streamed " * 20, chunk_chars=3),
                    Delay(0.2),
                    Text("more " * 20, chunk_chars=3),
                    Delay(5),
                ]
            )
        )
    elif point in ("mid-tool", "mid-recovery"):
        llm.enqueue(tool_turn("bash", {"command": f"sleep 60 & echo $! >> {pid_file}; wait"}))
    elif point in ("question-wait", "during-abort"):
        llm.enqueue(tool_turn("question", QUESTION))


def _settled(client: httpx.Client, server: _Server, sid: str) -> bool:
    """The session is idle, every reply completed, and no run of it is queued or running."""
    deadline = time.monotonic() + _SETTLE_TIMEOUT_S
    engine = create_engine(parse(server.db).url, poolclass=NullPool)
    try:
        while time.monotonic() < deadline:
            status = client.get(server.url + "/session/status").json()
            msgs = client.get(f"{server.url}/session/{sid}/message").json()
            replies = [m for m in msgs if m["info"]["role"] == "assistant"]
            with engine.connect() as conn:
                open_runs = runs.open_runs(conn, sid)
            done = replies and all("completed" in r["info"]["time"] for r in replies)
            if sid not in status and done and not open_runs:
                return True
            time.sleep(0.1)
    finally:
        engine.dispose()
    return False


def _pairing(requests: list[dict[str, Any]]) -> list[str]:
    bad = []
    for n, body in enumerate(requests):
        pending: list[str] = []
        for message in body.get("messages", []):
            if pending and message.get("role") != "tool":
                bad.append(
                    f"request {n}: tool calls {pending} not answered before "
                    f"a {message.get('role')} message"
                )
                pending = []
            if message.get("role") == "assistant":
                pending = [c["id"] for c in message.get("tool_calls") or []]
            elif message.get("role") == "tool":
                if message.get("tool_call_id") not in pending:
                    bad.append(f"request {n}: tool result for unknown call")
                else:
                    pending.remove(message["tool_call_id"])
        if pending:
            bad.append(f"request {n}: tool calls {pending} never answered")
    return bad


def _check(server: _Server, client: httpx.Client, llm: ScriptedLLM, pid_file: Path) -> list[str]:
    engine = create_engine(parse(server.db).url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            report = invariants.check(conn, settled=True)
            live = {lease.session_id for lease in leases.live(conn)}
            groups = invariants.recorded_processes(conn)
    finally:
        engine.dispose()
    found = [f"{name}: {v}" for name, vs in report.violations.items() for v in vs]
    busy = set(client.get(server.url + "/session/status").json())
    found += [f"session {sid} busy without a live lease" for sid in busy - live]
    found += [
        f"process group {g.pgid} of a dead owner alive"
        for g in groups
        if is_provably_dead(g.owner) and group_alive(g.pgid)
    ]
    if pid_file.exists():
        for pid in pid_file.read_text().split():
            if _alive(int(pid)):
                found.append(f"orphaned tool process {pid} alive")
    found += _pairing(llm.requests)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _round(
    point: str, project: Path, db: Path | str, llm: ScriptedLLM, tally: Tally, n: int
) -> None:
    pid_file = project / f"pids-{n}"
    server = _Server(project, db)
    client = httpx.Client(timeout=30)
    try:
        first_cut = "mid-tool" if point == "mid-recovery" else point
        server.start(first_cut)
        sid = client.post(server.url + "/session", json={}).json()["id"]
        _script(point, llm, pid_file)
        # "after-admission" kills the server before it answers: the prompt is stored anyway.
        with contextlib.suppress(httpx.TransportError):
            client.post(
                f"{server.url}/session/{sid}/prompt_async",
                json={"parts": [{"type": "text", "text": f"chaos round {n}"}]},
            )
        if point == "during-abort":
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not client.get(server.url + "/question").json():
                time.sleep(0.05)
            # The server dies in the middle of this request: that is the point.
            with contextlib.suppress(httpx.TransportError):
                client.post(f"{server.url}/session/{sid}/abort")
        died = server.wait_death()
        tally.land(first_cut, died)
        if point == "mid-recovery":
            server.start("mid-recovery", dies_starting=True)
            tally.land("mid-recovery", server.wait_death())
        server.start()
        if not _settled(client, server, sid):
            with tally.lock:
                tally.violations.append(f"round {n} ({point}): session {sid} did not settle")
        for violation in _check(server, client, llm, pid_file):
            with tally.lock:
                tally.violations.append(f"round {n} ({point}): {violation}")
    finally:
        server.stop()
        client.close()


def chaos(
    scratch: Path,
    *,
    kills: int,
    workers: int,
    console: Console,
    postgres: str | None = None,
) -> Tally:
    """Run rounds over the cut points until about ``kills`` kills were aimed.

    Args:
        scratch: Where each worker's project (and SQLite file) goes.
        postgres: A PostgreSQL URL: each worker then runs on a database of its own on that
            server, ``<database>_chaos_<n>``, created afresh (dropped first if it exists).
    """
    tally = Tally()
    rounds = [CUT_POINTS[i % len(CUT_POINTS)] for i in range(kills)]
    # mid-recovery rounds aim two kills each.
    total, plan = 0, []
    for point in rounds:
        if total >= kills:
            break
        plan.append(point)
        total += 2 if point == "mid-recovery" else 1

    def worker(index: int, points: list[str]) -> None:
        with ScriptedLLM() as llm:
            project = scratch / f"worker-{index}"
            project.mkdir(parents=True, exist_ok=True)
            (project / "opencode.json").write_text(
                json.dumps(
                    {
                        "model": "scripted/scripted-model",
                        "small_model": f"scripted/{AUX_MODEL}",  # titles take no turn
                        "provider": {
                            "scripted": {
                                "npm": "@ai-sdk/openai-compatible",
                                "options": {"baseURL": llm.base_url, "apiKey": "chaos"},
                                "models": {"scripted-model": {}, AUX_MODEL: {}},
                            }
                        },
                    }
                )
            )
            db: Path | str = (
                scratch / f"worker-{index}.db"
                if postgres is None
                else _fresh_database(postgres, f"chaos_{index}")
            )
            for n, point in enumerate(points):
                _round(point, project, db, llm, tally, n)
                console.print(
                    f"worker {index}: round {n} at {point}: "
                    f"landed {sum(tally.landed.values())}, "
                    f"violations {len(tally.violations)}"
                )

    shares = [plan[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(worker, i, share) for i, share in enumerate(shares)]:
            future.result()
    return tally


def _fresh_database(url: str, suffix: str) -> str:
    """Create ``<database>_<suffix>`` on the server of ``url`` (dropping an old one); return
    its URL."""
    location = parse(url)
    base = make_url(location.url)
    name = f"{base.database or 'roost'}_{suffix}"
    # The maintenance database: the one named in the URL need not exist.
    maintenance = base.set(database="postgres").render_as_string(hide_password=False)
    admin = create_engine(maintenance, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def report(tally: Tally, console: Console) -> None:
    """Print kills per cut point and the violations."""
    console.print("| cut point | kills landed | missed |\n|---|---|---|")
    for point in CUT_POINTS:
        console.print(f"| {point} | {tally.landed[point]} | {tally.missed[point]} |")
    console.print(f"| total | {sum(tally.landed.values())} | {sum(tally.missed.values())} |")
    console.print(f"invariant violations: {len(tally.violations)}")
    for line in tally.violations[:50]:
        console.print(f"  - {line}")


def run_chaos(db: Path | str | None, *, kills: int, workers: int) -> int:
    """Blocking entry point used by the CLI; exit 0 only with kills landed and no violation.

    ``db``: a scratch SQLite file (its directory holds the workers' files), a PostgreSQL URL
    (each worker gets a database of its own on that server), or None (a temporary directory).
    """
    console = Console()
    location = parse(db) if db is not None else None
    postgres = location.url if location is not None and location.kind == "postgresql" else None
    with tempfile.TemporaryDirectory(prefix="roost-chaos-") as tmp:
        scratch = location.path.parent if location and location.path else Path(tmp)
        tally = chaos(
            scratch, kills=kills, workers=max(1, workers), console=console, postgres=postgres
        )
    report(tally, console)
    landed = sum(tally.landed.values())
    missed = sum(tally.missed.values())
    return 0 if landed > 0 and missed == 0 and not tally.violations else 1
