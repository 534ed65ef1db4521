"""Event fan-out under load: does watching ``/event`` slow the server down (issue #13)?

For each subscriber count (``--subscribers``, default 0, 50 and 200) it starts a fresh real
``roost serve`` (127.0.0.1, the suite's instant scripted LLM), connects that many ``GET /event``
subscribers (one separate process, raw asyncio sockets, so reading costs the server's CPU as
little as possible), then has ``--sessions`` sessions prompting for ``--seconds``: each session
sends ``prompt_async`` and waits for its ``session.idle`` (read off one more ``/event`` stream,
the driver's own) before the next. Meanwhile another process sends ``GET /global/health`` every
50 ms. A subscriber whose stream ends reconnects with ``Last-Event-ID`` (the last id it read).

Printed per subscriber count: prompts completed in the window (``session.idle`` received before
it closed), health and admission (``prompt_async`` → 204) p50 / p99 in ms (client side, the
window's requests), events per subscriber against the log (the events after the one that was
last when the subscribers connected, read back by a ``Last-Event-ID`` replay once the load is
over: the minimum and maximum received, the subscribers that got exactly those ids in order, and
their reconnects), the server's CPU seconds in the window and its RSS (at the window's end and
the peak, MiB).

Run: ``.venv/bin/python bench/fanout_bench.py [--seconds 20] [--subscribers 0,50,200]``. Every
loop is bounded, every wait has a timeout and every process it starts is stopped in a
``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from array import array
from collections import defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, cast

import httptools  # type: ignore[import-untyped]  # uvicorn[standard]'s parser; no stubs
import httpx
from httpx_sse import aconnect_sse, connect_sse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.scripted_llm import ScriptedLLM  # noqa: E402
from tests.support.server import RoostServer, project_config, prompt_body  # noqa: E402

REQUEST_TIMEOUT_S = 60.0
PROMPT_TIMEOUT_S = 120.0
"""Admission → ``session.idle``, at most; a slower prompt is a failure, not a number."""
CONNECT_TIMEOUT_S = 60.0
"""All subscribers connected (``server.connected`` read), at most."""
CATCH_UP_TIMEOUT_S = 120.0
"""After the load, until every subscriber has read the last logged event, at most."""
PROBE_EVERY_S = 0.050
HEARTBEAT_MS = 1000
"""The server's SSE heartbeat: a replay ends at the first heartbeat after it."""
MAX_RECONNECTS = 10_000
"""Per subscriber; more means the server keeps cutting it off, which the table shows."""


class BenchError(Exception):
    """The server misbehaved (a non-2xx, no ``session.idle``); no number is made."""


def log(message: str) -> None:
    """Progress, on stderr so stdout stays one Markdown table."""
    print(message, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """Linear-interpolated ``q``-th percentile (0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = math.floor(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def proc_status_mib(pid: int, key: str) -> float:
    """A ``kB`` line of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no {key} for pid {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def replay_ids(url: str, after: int) -> list[int]:
    """Ids of the logged events after ``after``: a ``Last-Event-ID`` replay, read until the
    first heartbeat (the server is quiet by then, so the replay is the whole log after it)."""
    ids: list[int] = []
    with (
        httpx.Client(timeout=httpx.Timeout(REQUEST_TIMEOUT_S)) as client,
        connect_sse(client, "GET", url + "/event", headers={"Last-Event-ID": str(after)}) as sse,
    ):
        for item in sse.iter_sse():
            kind = json.loads(item.data)["type"] if item.data else ""  # "": a ping comment
            if kind == "server.heartbeat":
                return ids
            if kind and kind != "server.connected":
                ids.append(int(item.id))  # httpx-sse keeps the last id on frames without one
    raise BenchError("the replay ended before a heartbeat")


# -- the subscribers, in a process of their own ------------------------------------------


class _Subscriber(asyncio.Protocol):
    """One ``GET /event`` stream; keeps the ids of the frames it reads, reconnects when cut."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.ids = array("q")
        self.connected = False
        """``server.connected`` read at least once."""
        self.reconnects = 0
        self.failure = ""
        self._parser: Any = None
        self._buffer = b""
        self.transport: asyncio.Transport | None = None

    def connect(self) -> None:
        """Open a new connection; it resumes after the last id read."""
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: self, self.pool.host, self.pool.port)
        except OSError as exc:
            self.failure = f"connect: {exc!r}"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
        self._parser = httptools.HttpResponseParser(self)
        self._buffer = b""
        resume = f"Last-Event-ID: {self.ids[-1]}\r\n" if self.ids else ""
        self.transport.write(
            f"GET /event HTTP/1.1\r\nHost: {self.pool.host}:{self.pool.port}\r\n"
            f"Accept: text/event-stream\r\n{resume}\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.failure = f"parse: {exc!r}"
            if self.transport is not None:
                self.transport.close()

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status != 200:
            self.failure = f"status {status}"

    def on_body(self, body: bytes) -> None:
        self._buffer += body
        end = self._buffer.rfind(b"\n\n")
        if end < 0:
            return
        complete, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        for frame in complete.split(b"\n\n"):
            # sse-starlette's ping comment ends in CRLF CRLF, so it joins the frame after it.
            line = frame if frame.startswith(b"id: ") else frame[frame.find(b"\nid: ") + 1 :]
            if line.startswith(b"id: "):
                self.ids.append(int(line[4 : line.index(b"\n")]))
            else:
                self.connected = True

    def on_message_complete(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.pool.stopping or self.failure:
            return
        self.reconnects += 1
        if self.reconnects > MAX_RECONNECTS:
            self.failure = "too many reconnects"
            return
        self.connect()


@dataclass
class _Pool:
    host: str
    port: int
    stopping: bool = False
    subscribers: list[_Subscriber] = field(default_factory=list)


def _summary(pool: _Pool, expected: list[int]) -> dict[str, Any]:
    """Per-subscriber counts against the ``expected`` ids."""
    counts = [len(s.ids) for s in pool.subscribers]
    last = expected[-1] if expected else 0
    exact = sum(1 for s in pool.subscribers if [i for i in s.ids if i <= last] == expected)
    inexact = [s for s in pool.subscribers if [i for i in s.ids if i <= last] != expected]
    missing = sorted(set(expected) - set(inexact[0].ids))[:5] if inexact else []
    return {
        "missing": missing,
        "min": min(counts, default=0),
        "max": max(counts, default=0),
        "exact": exact,
        "reconnects": sum(s.reconnects for s in pool.subscribers),
        "failures": [s.failure for s in pool.subscribers if s.failure][:3],
    }


async def _subscribers(url: str, count: int, conn: Connection) -> None:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    pool = _Pool(host, int(port))
    pool.subscribers = [_Subscriber(pool) for _ in range(count)]
    for subscriber in pool.subscribers:
        subscriber.connect()
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not all(s.connected or s.failure for s in pool.subscribers):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    conn.send(sum(s.connected for s in pool.subscribers))
    loop = asyncio.get_running_loop()
    expected: list[int] = await loop.run_in_executor(None, conn.recv)
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    last = expected[-1] if expected else 0
    while time.monotonic() < deadline:
        if all(s.failure or (s.ids and s.ids[-1] >= last) for s in pool.subscribers):
            break
        await asyncio.sleep(0.1)
    pool.stopping = True
    conn.send(_summary(pool, expected))
    for subscriber in pool.subscribers:
        if subscriber.transport is not None:
            subscriber.transport.close()


def subscribers_main(url: str, count: int, conn: Connection) -> None:
    """Process entry: connect ``count`` subscribers, send how many connected, receive the
    expected ids, wait (bounded) until each has read the last, send the summary."""
    try:
        import uvloop

        uvloop.run(_subscribers(url, count, conn))
    except ImportError:
        asyncio.run(_subscribers(url, count, conn))


# -- the health probe, in a process of its own -------------------------------------------


def probe_main(url: str, stop: Any, conn: Connection) -> None:
    """Process entry: ``GET /global/health`` every ``PROBE_EVERY_S`` until ``stop`` is set;
    then sends the latencies in ms."""
    latencies: list[float] = []
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        client.get(url + "/global/health")  # connect before measuring
        conn.send("ready")
        while not stop.is_set():
            started = time.perf_counter()
            response = client.get(url + "/global/health")
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            latencies.append(elapsed * 1000)
            time.sleep(max(0.0, PROBE_EVERY_S - elapsed))
    conn.send(latencies)


# -- the prompting sessions --------------------------------------------------------------


class IdleHub:
    """The driver's own ``GET /event``: hands each ``session.idle`` to the session's waiter."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self._client = client
        self._url = url
        self._idle: defaultdict[str, asyncio.Queue[float]] = defaultdict(asyncio.Queue)
        self.connected = asyncio.Event()
        self.failure: BaseException | None = None

    async def run(self) -> None:
        """Read the stream until cancelled; a failed or ended stream is kept in ``failure``."""
        last = ""
        try:
            for _ in range(MAX_RECONNECTS):
                headers = {"Last-Event-ID": last} if last else {}
                async with aconnect_sse(
                    self._client, "GET", self._url + "/event", headers=headers
                ) as source:
                    source.response.raise_for_status()
                    async for sse in source.aiter_sse():
                        self.connected.set()
                        last = sse.id or last
                        if '"session.idle"' in sse.data:
                            session_id = json.loads(sse.data)["properties"]["sessionID"]
                            self._idle[session_id].put_nowait(time.perf_counter())
            raise BenchError("the driver's GET /event was cut off too often")
        except Exception as exc:
            self.failure = exc

    async def wait_idle(self, session_id: str) -> float:
        """The receive time of the next ``session.idle`` of ``session_id``."""
        waiting = self._idle[session_id]
        deadline = time.perf_counter() + PROMPT_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.failure is not None:
                raise BenchError(f"the driver's GET /event failed: {self.failure!r}")
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(waiting.get(), 0.5)
        raise BenchError(f"no session.idle for {session_id} within {PROMPT_TIMEOUT_S:.0f} s")


@dataclass
class Load:
    """What the prompting sessions saw in the window."""

    completed: int = 0
    admission_ms: list[float] = field(default_factory=list)


async def drive(
    url: str, sessions: int, seconds: float, pids: list[int]
) -> tuple[Load, list[float]]:
    """Create ``sessions`` sessions and prompt each in a row for ``seconds``; returns the load
    and the CPU seconds of each of ``pids`` in the window. Prompts still running at the end are
    awaited, not counted."""
    load = Load()
    async with (
        httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as api,
        httpx.AsyncClient(timeout=httpx.Timeout(REQUEST_TIMEOUT_S, read=None)) as stream,
    ):
        hub = IdleHub(stream, url)
        reader = asyncio.create_task(hub.run())
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                await hub.connected.wait()
            ids = []
            for n in range(sessions):
                response = await api.post("/session", json={"title": f"fanout-{n}"})
                if response.status_code != 200:
                    raise BenchError(f"POST /session -> {response.status_code}")
                ids.append(response.json()["id"])
            cpu_before = [cpu_s(pid) for pid in pids]
            end = time.perf_counter() + seconds

            async def prompting(session_id: str) -> None:
                while time.perf_counter() < end:
                    sent = time.perf_counter()
                    response = await api.post(
                        f"/session/{session_id}/prompt_async", json=prompt_body("hi")
                    )
                    load.admission_ms.append((time.perf_counter() - sent) * 1000)
                    if response.status_code != 204:
                        raise BenchError(f"prompt_async -> {response.status_code}")
                    if await hub.wait_idle(session_id) <= end:
                        load.completed += 1

            async with asyncio.TaskGroup() as group:
                for session_id in ids:
                    group.create_task(prompting(session_id))
                await asyncio.sleep(seconds)
                cpu = [cpu_s(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    return load, cpu


# -- one row -----------------------------------------------------------------------------


def measure(tmp: Path, llm_url: str, subscribers: int, args: argparse.Namespace) -> str:
    """One fresh server with ``subscribers`` watchers under the load; one table row."""
    project = tmp / f"project-{subscribers}"
    project.mkdir()
    (project / "opencode.json").write_text(json.dumps(project_config(llm_url)))
    server = RoostServer(
        project,
        tmp / f"fanout-{subscribers}.db",
        env={"ROOST_HEARTBEAT_MS": str(HEARTBEAT_MS)},
        args=["--hostname", "127.0.0.1"],
    )
    spawn = multiprocessing.get_context("spawn")
    stop_probe = spawn.Event()
    sub_conn, sub_child = spawn.Pipe()
    probe_conn, probe_child = spawn.Pipe()
    processes: list[BaseProcess] = []
    try:
        server.start()
        assert server.proc is not None
        pids = [server.proc.pid]  # whose CPU time the window reports
        head = (replay_ids(server.url, 0) or [0])[-1]
        if subscribers:
            processes.append(
                spawn.Process(target=subscribers_main, args=(server.url, subscribers, sub_child))
            )
            processes[-1].start()
            pids.append(processes[-1].pid or 0)
            if not sub_conn.poll(CONNECT_TIMEOUT_S + 10):
                raise BenchError("the subscribers did not report")
            connected = sub_conn.recv()
            if connected != subscribers:
                raise BenchError(f"only {connected} of {subscribers} subscribers connected")
        processes.append(
            spawn.Process(target=probe_main, args=(server.url, stop_probe, probe_child))
        )
        processes[-1].start()
        if not probe_conn.poll(REQUEST_TIMEOUT_S):
            raise BenchError("the probe did not start")
        probe_conn.recv()
        log(f"{subscribers} subscribers: prompting for {args.seconds:.0f} s")
        load, window_cpu_s = asyncio.run(drive(server.url, args.sessions, args.seconds, pids))
        subscribers_cpu = f"{window_cpu_s[1]:.1f}" if subscribers else "-"
        rss = proc_status_mib(server.proc.pid, "VmRSS")
        stop_probe.set()
        if not probe_conn.poll(REQUEST_TIMEOUT_S):
            raise BenchError("the probe did not report")
        health_ms: list[float] = probe_conn.recv()
        expected = replay_ids(server.url, head)
        events = f"- / {len(expected)}"
        if subscribers:
            sub_conn.send(expected)
            if not sub_conn.poll(CATCH_UP_TIMEOUT_S + 10):
                raise BenchError("the subscribers did not report")
            got = sub_conn.recv()
            events = (
                f"{got['min']}-{got['max']} / {len(expected)} ({got['exact']} exact, "
                f"{got['reconnects']} reconnects)"
            )
            if got["missing"]:
                events += f" e.g. missing {got['missing']}"
            if got["failures"]:
                events += f" failures: {got['failures']}"
        peak = proc_status_mib(server.proc.pid, "VmHWM")
    finally:
        stop_probe.set()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=10)
        server.close()
    return (
        f"| {subscribers} | {load.completed} | {pct(health_ms, 50):.1f} | "
        f"{pct(health_ms, 99):.1f} | {pct(load.admission_ms, 50):.1f} | "
        f"{pct(load.admission_ms, 99):.1f} | {events} | {window_cpu_s[0]:.1f} | "
        f"{subscribers_cpu} | {rss:.0f} / {peak:.0f} |"
    )


def main() -> None:
    """Measure each subscriber count on a fresh server and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="the prompting window")
    parser.add_argument("--sessions", type=int, default=20, help="sessions prompting at once")
    parser.add_argument(
        "--subscribers", default="0,50,200", help="comma-separated subscriber counts"
    )
    args = parser.parse_args()
    # SIGTERM (``timeout``, a CI runner) unwinds like Ctrl-C, so the ``finally`` blocks stop
    # the server and the helper processes instead of leaving them running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    counts = [int(n) for n in args.subscribers.split(",")]
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLM() as llm:
        for count in counts:
            rows.append(measure(Path(tmp), llm.base_url, count, args))
            log(rows[-1])
    print(
        f"{args.sessions} sessions prompting for {args.seconds:.0f} s; "
        "health and admission in ms; RSS in MiB.\n"
    )
    print(
        "| subscribers | prompts completed | health p50 | health p99 | admission p50 | "
        "admission p99 | events per subscriber / expected | server CPU s | subscribers CPU s | "
        "RSS end / peak |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
