"""Roost's own benchmark: start-up, memory, prompt latency and the store's commit rate.

Run from the checkout: ``uv run python bench/roost_bench.py [--quick] [--sync FULL|NORMAL]
[--json FILE]``. It prints a Markdown table on stdout (progress goes to stderr). Speed and memory
are measured here and never asserted in tests.

What it measures, against real ``python -m roost serve --port 0`` subprocesses in a temporary
project whose ``opencode.json`` points at the suite's instant scripted LLM (``tests.support``;
every reply is the text ``ok``):

1. start → ready: spawn → first 200 from ``GET /session``, median over fresh databases;
2. idle RSS (``VmRSS`` of the server process) 2 s after ready;
3. admission: ``POST /session/{id}/prompt_async`` → 204, client side;
4. prompt → ``session.idle`` on one long-lived ``GET /event`` stream, for (a) prompts in a row
   on one session and (b) several sessions at once, each session's prompts in a row;
5. prompts/s for (a) and (b);
6. RSS after that load, then after each of a few more rounds of the same load;
7. in-process, ``Database.write`` events/s (one ``Tx.append`` per command, awaited one by one,
   and all at once so group commit folds them) against stdlib ``sqlite3`` committing one
   similar row per ``BEGIN IMMEDIATE``/``COMMIT``, for ``synchronous`` FULL and NORMAL.

Latencies run from just before a request is sent until its response (admission) or the
``session.idle`` frame (prompt → idle) is read. Servers bind 127.0.0.1 only; every loop is
bounded and every wait has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import functools
import importlib.util
import json
import math
import os
import platform
import queue
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from httpx_sse import aconnect_sse

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the scripted LLM and the project config live in tests/

from tests.support.scripted_llm import ScriptedLLM  # noqa: E402
from tests.support.server import project_config, prompt_body  # noqa: E402

from roost.store.database import Database  # noqa: E402
from roost.store.event_log import Tx  # noqa: E402

START_TIMEOUT_S = 60.0
"""Spawn → ready, at most; a slower start is a failure, not a number."""
REQUEST_TIMEOUT_S = 30.0
PROMPT_TIMEOUT_S = 60.0
"""Admission → ``session.idle``, at most, per prompt."""
IDLE_RSS_DELAY_S = 2.0
STOP_TIMEOUT_S = 10.0
"""SIGTERM → exit, at most, before SIGKILL."""
STORE_SESSION_ID = "ses_bench"
STORE_LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
"""The event loop the store is measured on: the one ``roost serve`` runs on."""


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does."""

    spawns: int
    seq_prompts: int
    conc_sessions: int
    conc_prompts: int
    """Prompts per session in the concurrent load."""
    load_repeats: int
    """Extra rounds of the whole load after the first, for RSS growth."""
    store_events: int


FULL_SIZES = Sizes(
    spawns=5, seq_prompts=100, conc_sessions=16, conc_prompts=10, load_repeats=3, store_events=2000
)
QUICK_SIZES = Sizes(
    spawns=3, seq_prompts=20, conc_sessions=4, conc_prompts=5, load_repeats=3, store_events=300
)


class BenchError(Exception):
    """The server misbehaved (no start, a non-2xx, no ``session.idle``); no number is made."""


def log(message: str) -> None:
    """Progress, on stderr so stdout stays one Markdown document."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated ``q``-th percentile (0..100) of a non-empty list."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rss_mib(pid: int) -> float:
    """``VmRSS`` of one process, in MiB (Linux ``/proc/PID/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmRSS for pid {pid}")


# -- the server process ----------------------------------------------------------------


class ServerProcess:
    """One ``python -m roost serve --port 0`` subprocess in ``project``, on ``db_path``."""

    def __init__(self, project: Path, db_path: Path, sync: str) -> None:
        self.project = project
        self.db_path = db_path
        self.sync = sync
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._stderr: IO[str] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Spawn the server and wait for its first 200 on ``GET /session``.

        Returns:
            Seconds from spawn to that 200.

        Raises:
            BenchError: It exited, or was not ready within ``START_TIMEOUT_S``.
        """
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(self.project / ".xdg-config"),
            "XDG_DATA_HOME": str(self.project / ".xdg-data"),
        }
        for name in ("OPENAI_API_KEY", "ROOST_SERVER_PASSWORD", "ROOST_CHAOS_CUT"):
            env.pop(name, None)
        cmd = [sys.executable, "-m", "roost", "serve", "--port", "0", "--hostname", "127.0.0.1"]
        cmd += ["--db", str(self.db_path), "--sync", self.sync]
        self._stderr = (self.db_path.parent / "server.log").open("w")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read_stdout, args=(self.proc,), daemon=True).start()
        self.url = self._wait_for_url(started + START_TIMEOUT_S)
        with httpx.Client(timeout=5.0) as client:
            while time.perf_counter() < started + START_TIMEOUT_S:
                with contextlib.suppress(httpx.TransportError):
                    if client.get(self.url + "/session").status_code == 200:
                        return time.perf_counter() - started
                time.sleep(0.01)
        raise BenchError(
            f"GET /session gave no 200 within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _wait_for_url(self, deadline: float) -> str:
        while (left := deadline - time.perf_counter()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise BenchError(f"roost serve exited before listening:\n{self.log_tail()}")
            if "listening on " in line:
                return line.rsplit("listening on ", 1)[1].strip()
        raise BenchError(
            f"roost serve did not listen within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's stderr."""
        path = self.db_path.parent / "server.log"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to its process group after ``STOP_TIMEOUT_S``. Idempotent."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def measure_startup(project: Path, tmp: Path, sizes: Sizes, sync: str) -> dict[str, Any]:
    """Spawn → ready and idle RSS, each spawn on a fresh database."""
    ready_ms: list[float] = []
    idle_rss: list[float] = []
    for i in range(sizes.spawns):
        server = ServerProcess(project, tmp / f"startup-{i}" / "roost.db", sync)
        try:
            ready_ms.append(server.start() * 1000)
            time.sleep(IDLE_RSS_DELAY_S)
            idle_rss.append(rss_mib(server.pid))
        finally:
            server.stop()
        log(f"  spawn {i + 1}/{sizes.spawns}: ready {ready_ms[-1]:.0f} ms, {idle_rss[-1]:.1f} MiB")
    return {
        "ready_ms_p50": statistics.median(ready_ms),
        "ready_ms_min": min(ready_ms),
        "ready_ms_max": max(ready_ms),
        "idle_rss_mb_p50": statistics.median(idle_rss),
    }


# -- prompt load over HTTP and SSE -----------------------------------------------------


class IdleHub:
    """One ``GET /event`` subscription that hands each ``session.idle`` to its waiter."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url
        self._idle: defaultdict[str, asyncio.Queue[float]] = defaultdict(asyncio.Queue)
        self.connected = asyncio.Event()
        self.stale = 0
        """``session.idle`` frames that arrived before the prompt being waited for was sent."""
        self.failure: BaseException | None = None

    async def run(self) -> None:
        """Read the stream until cancelled; each idle frame is stamped as it is read.

        A failed or ended stream is kept in ``failure`` and raised to the prompts waiting.
        """
        try:
            async with aconnect_sse(self._client, "GET", self._url + "/event") as source:
                source.response.raise_for_status()
                async for sse in source.aiter_sse():
                    received = time.perf_counter()
                    self.connected.set()
                    if '"session.idle"' not in sse.data:
                        continue
                    event = json.loads(sse.data)
                    if event.get("type") == "session.idle":
                        self._idle[event["properties"]["sessionID"]].put_nowait(received)
            raise BenchError("the server ended GET /event")
        except Exception as exc:
            self.failure = exc

    async def wait_idle(self, session_id: str, sent: float) -> float:
        """The receive time of the first ``session.idle`` for ``session_id`` after ``sent``."""
        waiting = self._idle[session_id]
        deadline = sent + PROMPT_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.failure is not None:
                raise BenchError(f"GET /event failed: {self.failure!r}")
            try:
                received = await asyncio.wait_for(waiting.get(), 0.5)
            except TimeoutError:
                continue
            if received >= sent:
                return received
            self.stale += 1
        raise BenchError(f"no session.idle for {session_id} within {PROMPT_TIMEOUT_S:.0f} s")

    async def wait_connected(self) -> None:
        """Until the first frame (``server.connected``) arrives."""
        deadline = time.perf_counter() + REQUEST_TIMEOUT_S
        while not self.connected.is_set():
            if self.failure is not None:
                raise BenchError(f"GET /event failed: {self.failure!r}")
            if time.perf_counter() > deadline:
                raise BenchError(f"GET /event sent nothing within {REQUEST_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.01)


@dataclass
class LoadRound:
    """One round of the load: (a) prompts in a row on one session, (b) sessions at once."""

    seq_admit_s: list[float] = field(default_factory=list)
    seq_idle_s: list[float] = field(default_factory=list)
    seq_wall_s: float = 0.0
    conc_admit_s: list[float] = field(default_factory=list)
    conc_idle_s: list[float] = field(default_factory=list)
    conc_wall_s: float = 0.0
    prompts_by_session: dict[str, int] = field(default_factory=dict)


async def create_session(api: httpx.AsyncClient, title: str) -> str:
    """``POST /session``; the new session's id."""
    response = await api.post("/session", json={"title": title})
    if response.status_code != 200:
        raise BenchError(f"POST /session -> {response.status_code} {response.text[:200]}")
    session_id: str = response.json()["id"]
    return session_id


async def prompt_once(api: httpx.AsyncClient, hub: IdleHub, session_id: str) -> tuple[float, float]:
    """One ``prompt_async``; returns (send → 204, send → ``session.idle``) in seconds."""
    sent = time.perf_counter()
    response = await api.post(f"/session/{session_id}/prompt_async", json=prompt_body("hi"))
    admitted = time.perf_counter()
    if response.status_code != 204:
        raise BenchError(f"prompt_async -> {response.status_code} {response.text[:200]}")
    idle = await hub.wait_idle(session_id, sent)
    return admitted - sent, idle - sent


async def run_round(api: httpx.AsyncClient, hub: IdleHub, sizes: Sizes, n: int) -> LoadRound:
    """One round of the load on sessions of its own."""
    result = LoadRound()
    session_id = await create_session(api, f"bench-seq-{n}")
    started = time.perf_counter()
    for _ in range(sizes.seq_prompts):
        admit, idle = await prompt_once(api, hub, session_id)
        result.seq_admit_s.append(admit)
        result.seq_idle_s.append(idle)
    result.seq_wall_s = time.perf_counter() - started
    result.prompts_by_session[session_id] = sizes.seq_prompts

    session_ids = [
        await create_session(api, f"bench-conc-{n}-{k}") for k in range(sizes.conc_sessions)
    ]

    async def one_session(sid: str) -> None:
        for _ in range(sizes.conc_prompts):
            admit, idle = await prompt_once(api, hub, sid)
            result.conc_admit_s.append(admit)
            result.conc_idle_s.append(idle)

    started = time.perf_counter()
    try:
        async with asyncio.TaskGroup() as group:
            for sid in session_ids:
                group.create_task(one_session(sid))
    except ExceptionGroup as failed:
        raise BenchError(f"concurrent prompts failed: {failed.exceptions[0]!r}") from failed
    result.conc_wall_s = time.perf_counter() - started
    result.prompts_by_session.update(dict.fromkeys(session_ids, sizes.conc_prompts))
    return result


async def count_ok_replies(api: httpx.AsyncClient, session_id: str) -> int:
    """How many stored assistant messages of the session say exactly ``ok``."""
    response = await api.get(f"/session/{session_id}/message")
    if response.status_code != 200:
        raise BenchError(f"GET messages -> {response.status_code} {response.text[:200]}")
    return sum(
        1
        for m in response.json()
        if m["info"]["role"] == "assistant"
        and "".join(p.get("text", "") for p in m["parts"] if p["type"] == "text") == "ok"
    )


async def measure_load(server: ServerProcess, sizes: Sizes) -> dict[str, Any]:
    """The cold first prompt, then 1 + ``load_repeats`` rounds, with RSS after each."""
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=timeout) as api,
        httpx.AsyncClient(timeout=httpx.Timeout(REQUEST_TIMEOUT_S, read=None)) as stream,
    ):
        hub = IdleHub(stream, server.url)
        reader = asyncio.create_task(hub.run())
        try:
            await hub.wait_connected()
            warm_id = await create_session(api, "bench-cold")
            _, first_s = await prompt_once(api, hub, warm_id)
            expected = {warm_id: 1}
            rounds: list[LoadRound] = []
            rss_after: list[float] = []
            for n in range(1 + sizes.load_repeats):
                rounds.append(await run_round(api, hub, sizes, n))
                rss_after.append(rss_mib(server.pid))
                expected.update(rounds[-1].prompts_by_session)
                log(f"  load round {n + 1}: {_round_summary(rounds[-1])}, RSS {rss_after[-1]:.1f}")
            ok = sum([await count_ok_replies(api, sid) for sid in expected])
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    first = rounds[0]
    ms = 1000.0
    return {
        "first_prompt_ms": first_s * ms,
        "seq_admit_ms_p50": percentile(first.seq_admit_s, 50) * ms,
        "seq_admit_ms_p99": percentile(first.seq_admit_s, 99) * ms,
        "seq_idle_ms_p50": percentile(first.seq_idle_s, 50) * ms,
        "seq_idle_ms_p99": percentile(first.seq_idle_s, 99) * ms,
        "conc_admit_ms_p50": percentile(first.conc_admit_s, 50) * ms,
        "conc_admit_ms_p99": percentile(first.conc_admit_s, 99) * ms,
        "conc_idle_ms_p50": percentile(first.conc_idle_s, 50) * ms,
        "conc_idle_ms_p99": percentile(first.conc_idle_s, 99) * ms,
        "seq_prompts_per_s": len(first.seq_idle_s) / first.seq_wall_s,
        "conc_prompts_per_s": len(first.conc_idle_s) / first.conc_wall_s,
        "prompts_per_s_by_round": [_prompts_per_s(r) for r in rounds],
        "rss_after_rounds_mb": rss_after,
        "replies_ok": ok,
        "replies_expected": sum(expected.values()),
        "stale_idle_events": hub.stale,
    }


def _prompts_per_s(r: LoadRound) -> float:
    return (len(r.seq_idle_s) + len(r.conc_idle_s)) / (r.seq_wall_s + r.conc_wall_s)


def _round_summary(r: LoadRound) -> str:
    seq = len(r.seq_idle_s) / r.seq_wall_s
    conc = len(r.conc_idle_s) / r.conc_wall_s
    return f"{seq:.1f} prompts/s in a row, {conc:.1f} prompts/s at once"


def measure_server_load(project: Path, tmp: Path, sizes: Sizes, sync: str) -> dict[str, Any]:
    """Start one server on a fresh database and run the prompt load against it."""
    server = ServerProcess(project, tmp / "load" / "roost.db", sync)
    try:
        server.start()
        metrics = asyncio.run(measure_load(server, sizes))
    except (BenchError, httpx.HTTPError) as exc:
        raise BenchError(f"{exc!r}\n--- server log ---\n{server.log_tail()}") from exc
    finally:
        server.stop()
    return metrics


# -- the store, in process -------------------------------------------------------------


def part_event(i: int) -> dict[str, Any]:
    """``message.part.updated`` properties of a small finished text part."""
    at = int(time.time() * 1000)
    return {
        "part": {
            "id": f"prt_bench{i:08d}",
            "sessionID": STORE_SESSION_ID,
            "messageID": f"msg_bench{i // 10:07d}",
            "type": "text",
            "text": "ok",
            "time": {"start": at, "end": at},
        }
    }


def append_part(props: dict[str, Any], tx: Tx) -> None:
    """The store command measured: one ``message.part.updated`` event."""
    tx.append(STORE_SESSION_ID, "message.part.updated", props)


async def roost_append(path: Path, sync: str, n: int, *, concurrent: bool) -> float:
    """Events/s through ``Database.write``, one ``Tx.append`` per command."""
    db = await Database.open(path, synchronous=sync)
    try:
        commands = [functools.partial(append_part, part_event(i)) for i in range(n)]
        started = time.perf_counter()
        if concurrent:
            await asyncio.gather(*(db.write(c) for c in commands))
        else:
            for c in commands:
                await db.write(c)
        return n / (time.perf_counter() - started)
    finally:
        await db.close()


def raw_sqlite_append(path: Path, sync: str, n: int) -> float:
    """Events/s for stdlib ``sqlite3``: one INSERT of a similar row per transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute(
            "CREATE TABLE event (id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT NOT NULL,"
            " seq INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL,"
            " time_ms INTEGER NOT NULL, UNIQUE (session_id, seq))"
        )
        rows = [part_event(i) for i in range(n)]
        started = time.perf_counter()
        for seq, props in enumerate(rows, start=1):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "INSERT INTO event (session_id, seq, type, data, time_ms) VALUES (?, ?, ?, ?, ?)",
                (
                    STORE_SESSION_ID,
                    seq,
                    "message.part.updated",
                    json.dumps(props),
                    int(time.time() * 1000),
                ),
            )
            conn.execute("COMMIT")
        return n / (time.perf_counter() - started)
    finally:
        conn.close()


def run_like_server(coro: Coroutine[Any, Any, float]) -> float:
    """Run ``coro`` on ``STORE_LOOP``, the loop ``roost serve`` uses (``run_server``)."""
    if STORE_LOOP == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def measure_store(tmp: Path, sizes: Sizes) -> dict[str, Any]:
    """Events/s for the store (in a row and at once) and raw sqlite3, FULL and NORMAL."""
    n = sizes.store_events
    metrics: dict[str, Any] = {}
    for sync in ("FULL", "NORMAL"):
        folder = tmp / f"store-{sync.lower()}"
        folder.mkdir()
        raw = raw_sqlite_append(folder / "raw.db", sync, n)
        seq = run_like_server(roost_append(folder / "seq.db", sync, n, concurrent=False))
        conc = run_like_server(roost_append(folder / "conc.db", sync, n, concurrent=True))
        key = sync.lower()
        metrics |= {
            f"store_{key}_raw_events_per_s": raw,
            f"store_{key}_seq_events_per_s": seq,
            f"store_{key}_conc_events_per_s": conc,
        }
        log(f"  synchronous={sync}: raw {raw:.0f}, roost {seq:.0f} in a row, {conc:.0f} at once")
    return metrics


# -- report ------------------------------------------------------------------------------


def render(metrics: dict[str, Any], sizes: Sizes, args: argparse.Namespace) -> str:
    """The Markdown report."""
    m = metrics
    s = sizes
    seq = f"{s.seq_prompts} in a row on 1 session"
    conc = f"{s.conc_sessions} sessions x {s.conc_prompts} at once"
    rss_rounds = " → ".join(f"{x:.1f}" for x in m["rss_after_rounds_mb"])
    rates_by_round = " → ".join(f"{x:.1f}" for x in m["prompts_per_s_by_round"])
    ok = "yes" if m["replies_ok"] == m["replies_expected"] else "**NO**"
    rows = [
        (
            "1",
            f"start → ready (spawn → first 200 from `GET /session`), median of {s.spawns}",
            f"{m['ready_ms_p50']:.0f} ms (min {m['ready_ms_min']:.0f}, "
            f"max {m['ready_ms_max']:.0f})",
        ),
        ("2", "idle RSS 2 s after ready (median)", f"{m['idle_rss_mb_p50']:.1f} MiB"),
        ("", "first prompt of a fresh server (cold), prompt → idle", _ms(m["first_prompt_ms"])),
        ("3", f"admission `prompt_async` → 204, {seq}, p50 / p99", _pair(m, "seq_admit")),
        ("3", f"admission, {conc}, p50 / p99", _pair(m, "conc_admit")),
        ("4a", f"prompt → `session.idle`, {seq}, p50 / p99", _pair(m, "seq_idle")),
        ("4b", f"prompt → `session.idle`, {conc}, p50 / p99", _pair(m, "conc_idle")),
        (
            "5",
            "prompts/s, (a) in a row / (b) at once",
            f"{m['seq_prompts_per_s']:.1f} / {m['conc_prompts_per_s']:.1f}",
        ),
        ("", "prompts/s over (a)+(b), by round", rates_by_round),
        (
            "6",
            f"RSS after the load, then after each of {s.load_repeats} more rounds",
            f"{rss_rounds} MiB",
        ),
        ("", "every reply stored as `ok`", f"{ok} ({m['replies_ok']}/{m['replies_expected']})"),
    ]
    n = f"{s.store_events:,}"
    for sync in ("FULL", "NORMAL"):
        key = sync.lower()
        raw = m[f"store_{key}_raw_events_per_s"]
        rows.append(("7", f"raw `sqlite3`, synchronous={sync}, 1 row per txn", _rate(raw)))
        for mode, what in (("seq", f"{n} commands in a row"), ("conc", f"{n} commands at once")):
            rate = m[f"store_{key}_{mode}_events_per_s"]
            rows.append(
                (
                    "7",
                    f"store `Database.write` ({STORE_LOOP}), synchronous={sync}, {what}",
                    f"{_rate(rate)} ({rate / raw:.2f}x raw)",
                )
            )
    header = (
        f"Roost bench {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC · "
        f"{'quick' if args.quick else 'full'} sizes · server `--sync {args.sync}` · "
        f"Python {platform.python_version()} · {os.cpu_count()} CPUs · "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    lines = [header, "", "| # | measurement | result |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def _pair(m: dict[str, Any], name: str) -> str:
    return f"{_ms(m[name + '_ms_p50'])} / {_ms(m[name + '_ms_p99'])}"


def _rate(value: float) -> str:
    return f"{value:,.0f} events/s"


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print the table; 1 when the server misbehaved."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--sync", type=str.upper, choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    metrics: dict[str, Any] = {}
    try:
        with ScriptedLLM() as llm, tempfile.TemporaryDirectory(prefix="roost-bench-") as tmp_dir:
            tmp = Path(tmp_dir)
            project = tmp / "project"
            project.mkdir()
            config = project_config(llm.base_url)
            (project / "opencode.json").write_text(json.dumps(config, indent=2))
            log(f"start-up ({sizes.spawns} spawns)")
            metrics |= measure_startup(project, tmp, sizes, args.sync)
            log("prompt load")
            metrics |= measure_server_load(project, tmp, sizes, args.sync)
            log(f"store ({sizes.store_events} events per measurement)")
            metrics |= measure_store(tmp, sizes)
    except BenchError as exc:
        log(f"roost_bench: {exc}")
        return 1
    print(render(metrics, sizes, args))
    if args.json is not None:
        report = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "sync": args.sync,
            "sizes": asdict(sizes),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
            "metrics": metrics,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
