"""Costs that must stay flat as the store grows (issue #13, item 5): history and list latency at
two sizes each, start-up and RSS on a big database against an empty one.

    uv run python bench/store_scale.py              # 2,000 sessions x 5 messages; 5,000 messages
    uv run python bench/store_scale.py --sessions 200 --history 500     # smoke run

Databases are filled in process through the store's own write path (``Database.write`` with
``Tx.append``: ``session.created``, then per message ``message.updated`` and one text part),
so they hold exactly what a server would have stored. Then a real ``roost serve`` is started on
each (127.0.0.1, a free port), and measured from outside:

- start → ready: spawn until the first 200 from ``GET /session`` (median of 3 starts);
- RSS: ``VmRSS`` 1 s after ready, MiB;
- ``GET /session``: the whole list (p50/p99 of 50 requests);
- ``GET /session/{id}/message?limit=50``: the newest page (p50/p99 of 50 requests).

Every loop is bounded; every server is stopped in a ``finally``. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from roost.ids import new_message_id, new_part_id, new_session_id
from roost.model import event as ev
from roost.model import message as msg
from roost.model.session import new_session
from roost.store.database import Database
from roost.store.event_log import Tx

_READY_TIMEOUT_S = 120.0
_REQUESTS = 50


def _fill_session(tx: Tx, sid: str, messages: int, at: int) -> None:
    info = new_session(sid, directory="/bench", project_id="global", created_ms=at)
    tx.append(sid, ev.SESSION_CREATED, {"sessionID": sid, "info": info})
    for n in range(messages):
        mid = new_message_id()
        user = msg.user_message(
            mid, sid, created_ms=at + n, agent="build", provider_id="p", model_id="m"
        )
        tx.append(sid, ev.MESSAGE_UPDATED, {"sessionID": sid, "info": user})
        part = msg.text_part(new_part_id(), sid, mid, f"message {n} " + "x" * 200)
        tx.append(sid, ev.PART_UPDATED, {"sessionID": sid, "part": part})


async def _fill(path: Path, sessions: int, messages: int) -> list[str]:
    """Create ``sessions`` sessions of ``messages`` messages each; returns their ids."""
    db = await Database.open(path)
    ids = [new_session_id() for _ in range(sessions)]
    try:
        at = int(time.time() * 1000)
        for start in range(0, sessions, 50):  # 50 sessions per transaction
            chunk = ids[start : start + 50]

            def write(tx: Tx, chunk: list[str] = chunk) -> None:
                for sid in chunk:
                    _fill_session(tx, sid, messages, at)

            await db.write(write)
    finally:
        await db.close()
    return ids


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _Server:
    def __init__(self, db: Path, project: Path) -> None:
        self.db, self.project = db, project
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> float:
        """Start and return seconds until ``GET /session`` answers 200."""
        env = {**os.environ, "XDG_CONFIG_HOME": str(self.project / ".xdg")}
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "roost", "serve", "--port", "0", "--db", str(self.db)],
            cwd=self.project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "listening on " in line:
                self.url = line.rsplit("listening on ", 1)[1].strip()
                break
            if time.monotonic() - started > _READY_TIMEOUT_S:
                break
        if not self.url:
            raise RuntimeError("roost serve did not start")
        while time.monotonic() - started < _READY_TIMEOUT_S:
            try:
                if httpx.get(self.url + "/session", timeout=30).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        raise RuntimeError("roost serve never answered GET /session")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _latencies(url: str) -> list[float]:
    out = []
    with httpx.Client(timeout=60) as client:
        client.get(url)  # warm
        for _ in range(_REQUESTS):
            started = time.perf_counter()
            response = client.get(url)
            out.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url}: {response.status_code}")
    return out


def _measure(db: Path, project: Path, session: str | None) -> dict[str, Any]:
    starts, rss = [], 0.0
    for n in range(3):
        server = _Server(db, project)
        try:
            starts.append(server.start())
            if n == 2:
                time.sleep(1)
                assert server.proc is not None
                rss = _rss_mib(server.proc.pid)
                listed = _latencies(server.url + "/session")
                page = (
                    _latencies(f"{server.url}/session/{session}/message?limit=50")
                    if session
                    else []
                )
        finally:
            server.stop()
    return {
        "start_s": statistics.median(starts),
        "rss_mib": rss,
        "list": listed,
        "page": page,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=2000, help="sessions in the big store")
    parser.add_argument("--history", type=int, default=5000, help="messages in the long session")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="roost-scale-") as tmp:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        (project / "opencode.json").write_text(json.dumps({}))
        setups: list[tuple[str, int, int]] = [
            ("empty", 0, 0),
            ("20 sessions x 5", 20, 5),
            (f"{args.sessions:,} sessions x 5", args.sessions, 5),
            ("1 session x 100", 1, 100),
            (f"1 session x {args.history:,}", 1, args.history),
        ]
        rows = []
        for label, sessions, messages in setups:
            print(f"filling {label}", file=sys.stderr, flush=True)
            db = root / f"{label.replace(' ', '_').replace(',', '')}.db"
            ids = asyncio.run(_fill(db, sessions, messages)) if sessions else []
            if not sessions:
                asyncio.run(_fill(db, 0, 0))
            print(f"measuring {label}", file=sys.stderr, flush=True)
            result = _measure(db, project, ids[0] if sessions == 1 else None)
            rows.append((label, result))
    print(f"Store scale on this machine ({os.cpu_count()} cores), real roost serve, SQLite FULL\n")
    print(
        "| store | start → ready s | RSS MiB | GET /session p50 / p99 ms "
        "| newest 50 messages p50 / p99 ms |"
    )
    print("| --- | --- | --- | --- | --- |")
    for label, r in rows:
        page = f"{_pct(r['page'], 0.5):.1f} / {_pct(r['page'], 0.99):.1f}" if r["page"] else "n/a"
        print(
            f"| {label} | {r['start_s']:.2f} | {r['rss_mib']:.1f} | "
            f"{_pct(r['list'], 0.5):.1f} / {_pct(r['list'], 0.99):.1f} | {page} |"
        )


if __name__ == "__main__":
    main()
