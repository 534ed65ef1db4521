"""Roost's own benchmark: start-up, memory, admission and prompt latency, store commit rate.

Run it from the checkout (``make bench`` or ``.venv/bin/python bench/roost_bench.py``); it
prints a Markdown table and, with ``--json FILE``, writes the numbers too. Every server it
starts is a real ``roost serve`` on 127.0.0.1 answered by the project's scripted LLM (instant
"ok" replies), every load loop is bounded, and everything it starts is stopped at the end.

To compare with OpenCode on the same machine, use the shared harness (``../shared/bench``,
see bench/README.md); this script measures what that harness does not: the store's commit path
against raw ``sqlite3`` at the same durability.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.scripted_llm import ScriptedLLM  # noqa: E402
from tests.support.server import project_config  # noqa: E402

from roost.store.database import Database  # noqa: E402
from roost.store.event_log import Tx  # noqa: E402


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    """One ``roost serve`` subprocess."""

    def __init__(self, project: Path, db: Path, sync: str) -> None:
        self.project, self.db, self.sync = project, db, sync
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> float:
        """Start and return spawn → first 200 from ``GET /session`` in ms."""
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/roost"),
                "serve",
                "--port",
                "0",
                "--db",
                str(self.db),
                "--sync",
                self.sync,
            ],
            cwd=self.project,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "XDG_CONFIG_HOME": str(self.project / ".xdg")},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.url = line.rsplit("listening on ", 1)[1].strip()
        with httpx.Client() as client:
            while client.get(self.url + "/session").status_code != 200:
                time.sleep(0.005)
        return (time.perf_counter() - started) * 1000

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Load:
    """Prompts over one SSE subscription that wakes the waiter of each ``session.idle``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.AsyncClient(base_url=url, timeout=60)
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Load:
        ready = asyncio.get_running_loop().create_future()
        self._listener = asyncio.create_task(self._listen(ready))
        await ready
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self.client.aclose()

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        async with (
            httpx.AsyncClient(timeout=None) as client,
            client.stream("GET", self.url + "/event") as response,
        ):
            async for line in response.aiter_lines():
                if not ready.done():
                    ready.set_result(None)
                if not line.startswith("data:") or '"session.idle"' not in line:
                    continue
                sid = json.loads(line[5:])["properties"]["sessionID"]
                fut = self.waiters.pop(sid, None)
                if fut is not None and not fut.done():
                    fut.set_result(time.perf_counter())

    async def session(self) -> str:
        response = await self.client.post("/session", json={})
        return str(response.json()["id"])

    async def prompt(self, sid: str) -> tuple[float, float]:
        """One prompt; returns (admission ms, prompt → idle ms)."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[sid] = fut
        started = time.perf_counter()
        response = await self.client.post(
            f"/session/{sid}/prompt_async", json={"parts": [{"type": "text", "text": "hi"}]}
        )
        admitted = time.perf_counter()
        assert response.status_code == 204, response.text
        async with asyncio.timeout(60):
            idle = await fut
        return (admitted - started) * 1000, (idle - started) * 1000


async def roundtrip(url: str, sequential: int, sessions: int, per_session: int) -> dict[str, Any]:
    """Sequential prompts on one session, then ``sessions`` sessions in parallel."""
    async with Load(url) as load:
        sid = await load.session()
        await load.prompt(sid)  # warm: the provider SDK is imported on first use
        started = time.perf_counter()
        seq = [await load.prompt(sid) for _ in range(sequential)]
        seq_s = time.perf_counter() - started
        sids = [await load.session() for _ in range(sessions)]

        async def one(s: str) -> list[tuple[float, float]]:
            return [await load.prompt(s) for _ in range(per_session)]

        started = time.perf_counter()
        conc = [r for rs in await asyncio.gather(*(one(s) for s in sids)) for r in rs]
        conc_s = time.perf_counter() - started
    return {
        "admission_ms_p50": pct([a for a, _ in seq], 50),
        "admission_ms_p99": pct([a for a, _ in seq], 99),
        "seq_idle_ms_p50": pct([i for _, i in seq], 50),
        "seq_idle_ms_p99": pct([i for _, i in seq], 99),
        "seq_prompts_per_s": len(seq) / seq_s,
        "conc_admission_ms_p50": pct([a for a, _ in conc], 50),
        "conc_idle_ms_p50": pct([i for _, i in conc], 50),
        "conc_idle_ms_p99": pct([i for _, i in conc], 99),
        "conc_prompts_per_s": len(conc) / conc_s,
    }


async def store_rate(path: Path, sync: str, n: int) -> dict[str, float]:
    """Committed events/s through ``Database.write``: one per command, sequential and
    concurrent (group commit)."""
    db = await Database.open(path, synchronous=sync)

    def one(tx: Tx) -> None:
        tx.append(
            "ses_bench", "session.status", {"sessionID": "ses_bench", "status": {"type": "busy"}}
        )

    try:
        started = time.perf_counter()
        for _ in range(n):
            await db.write(one)
        sequential = n / (time.perf_counter() - started)
        started = time.perf_counter()
        await asyncio.gather(*(db.write(one) for _ in range(n)))
        concurrent = n / (time.perf_counter() - started)
    finally:
        await db.close()
    return {"sequential": sequential, "concurrent": concurrent}


def raw_rate(path: Path, sync: str, n: int) -> float:
    """Committed events/s with stdlib sqlite3: one INSERT per BEGIN IMMEDIATE … COMMIT."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute(
        "CREATE TABLE event (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT, "
        "seq INTEGER, type TEXT, data TEXT, time_ms INTEGER, UNIQUE(session_id, seq))"
    )
    data = json.dumps({"sessionID": "ses_bench", "status": {"type": "busy"}})
    started = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO event (session_id, seq, type, data, time_ms) VALUES (?, ?, ?, ?, ?)",
            ("ses_bench", i + 1, "session.status", data, 0),
        )
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - started)
    conn.close()
    return rate


def main() -> None:
    """Run everything and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sync", default="FULL", choices=["FULL", "NORMAL"])
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    spawns, seq, sessions, per, events, repeats = (
        (2, 20, 4, 3, 200, 1) if args.quick else (5, 100, 16, 10, 2000, 3)
    )
    results: dict[str, Any] = {"sync": args.sync}
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLM() as llm:
        root = Path(tmp)
        project = root / "project"
        project.mkdir()
        (project / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
        ready = []
        for i in range(spawns):
            server = Server(project, root / f"fresh-{i}.db", args.sync)
            try:
                ready.append(server.start())
                if i == 0:
                    time.sleep(2)
                    assert server.proc is not None
                    results["idle_rss_mib"] = rss_mib(server.proc.pid)
            finally:
                server.stop()
        results["ready_ms_p50"] = statistics.median(ready)
        server = Server(project, root / "load.db", args.sync)
        server.start()
        try:
            assert server.proc is not None
            for round_no in range(repeats):
                numbers = asyncio.run(roundtrip(server.url, seq, sessions, per))
                if round_no == 0:
                    results.update(numbers)
                    results["rss_after_load_mib"] = rss_mib(server.proc.pid)
            results[f"rss_after_{repeats}_loads_mib"] = rss_mib(server.proc.pid)
        finally:
            server.stop()
        store = asyncio.run(store_rate(root / "store.db", args.sync, events))
        raw = raw_rate(root / "raw.db", args.sync, events)
        results.update(
            {
                "store_events_per_s_sequential": store["sequential"],
                "store_events_per_s_concurrent": store["concurrent"],
                "raw_sqlite3_events_per_s": raw,
            }
        )
    rows = [
        (f"start → ready (p50 of {spawns} spawns)", f"{results['ready_ms_p50']:.0f} ms"),
        ("idle RSS, 2 s after ready", f"{results['idle_rss_mib']:.1f} MiB"),
        (
            "admission p50 / p99 (sequential)",
            f"{results['admission_ms_p50']:.2f} / {results['admission_ms_p99']:.2f} ms",
        ),
        (
            f"prompt → idle p50 / p99, 1 session x {seq}",
            f"{results['seq_idle_ms_p50']:.1f} / {results['seq_idle_ms_p99']:.1f} ms",
        ),
        (
            f"prompt → idle p50 / p99, {sessions} sessions x {per}",
            f"{results['conc_idle_ms_p50']:.1f} / {results['conc_idle_ms_p99']:.1f} ms",
        ),
        (
            "prompts/s sequential / concurrent",
            f"{results['seq_prompts_per_s']:.1f} / {results['conc_prompts_per_s']:.1f}",
        ),
        (
            f"RSS after load / after {repeats} loads",
            f"{results['rss_after_load_mib']:.1f} / "
            f"{results[f'rss_after_{repeats}_loads_mib']:.1f} MiB",
        ),
        (
            "store events/s, 1 per commit, sequential",
            f"{store['sequential']:.0f} ({store['sequential'] / raw:.0%} of raw)",
        ),
        (
            "store events/s, concurrent (group commit)",
            f"{store['concurrent']:.0f} ({store['concurrent'] / raw:.0%} of raw)",
        ),
        (f"raw sqlite3 events/s (WAL, synchronous={args.sync})", f"{raw:.0f}"),
    ]
    print(f"| metric (synchronous={args.sync}) | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
