"""Admission latency against its floor: what a durable 204 can cost at least on this machine.

Run from the checkout: ``.venv/bin/python bench/admission_floor.py [--requests 300]
[--rounds 3]``. It prints a Markdown table on stdout (progress goes to stderr).

Four servers answer ``POST /session/{id}/prompt_async`` with 204, each measured client side
with the same client the shared harness (``../shared/bench/ocbench.py``) uses, one
``httpx.AsyncClient`` on asyncio's default loop, one request at a time:

1. ``floor``: a bare ASGI app on uvicorn (uvloop, httptools: what ``roost serve`` runs on)
   that reads the body and answers. No validation, no store: the client plus HTTP.
2. ``floor+fsync``: the same, after writing the body to a file and ``fdatasync``-ing it on a
   worker thread (the least a durable admission does: one synced write, one thread hop).
3. ``roost noReply``: Roost storing the prompt (``noReply``: no turn follows).
4. ``roost turn``: Roost storing the prompt and answering it with the instant scripted LLM;
   the next prompt is sent once ``session.idle`` arrives (the harness's sequential roundtrip).

The servers take turns, ``--rounds`` times, so a noisy moment hits all of them. Servers bind
127.0.0.1 only; every wait has a timeout and every process is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from roost_bench import (
    REQUEST_TIMEOUT_S,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BenchError,
    IdleHub,
    ServerProcess,
    create_session,
    log,
    percentile,
)
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import project_config, prompt_body

WARMUP = 10
"""Requests sent before each measured batch and left out of it."""

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def floor_app(sync_to: Path | None) -> Callable[..., Awaitable[None]]:
    """The bare ASGI app: 204 once the body is read (and, with ``sync_to``, synced there)."""
    fd = os.open(sync_to, os.O_RDWR | os.O_CREAT, 0o600) if sync_to is not None else None

    def write(body: bytes) -> None:
        assert fd is not None
        os.pwrite(fd, body, 0)
        os.fdatasync(fd)

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if fd is not None:
            await asyncio.get_running_loop().run_in_executor(None, write, body)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def serve_floor(sync_to: Path | None) -> None:
    """Run the floor app on a free loopback port; prints ``listening on URL`` when ready."""
    import uvicorn
    import uvloop

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            print(f"listening on http://127.0.0.1:{port}", flush=True)

    config = uvicorn.Config(floor_app(sync_to), log_level="warning", lifespan="off")
    uvloop.run(Server(config).serve(sockets=[sock]))


class FloorProcess:
    """``admission_floor.py --serve-floor`` as a subprocess."""

    def __init__(self, sync_to: Path | None) -> None:
        cmd = [sys.executable, __file__, "--serve-floor"]
        if sync_to is not None:
            cmd += ["--sync-to", str(sync_to)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.url = ""
        found: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if "listening on " in line:
                    found.append(line.rsplit("listening on ", 1)[1].strip())

        threading.Thread(target=read, daemon=True).start()
        deadline = time.perf_counter() + START_TIMEOUT_S
        while not found and time.perf_counter() < deadline and self.proc.poll() is None:
            time.sleep(0.01)
        if not found:
            self.stop()
            raise BenchError("the floor server did not start")
        self.url = found[0]

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)


async def admissions(
    url: str, n: int, *, session_id: str, body: dict[str, Any], hub: IdleHub | None
) -> list[float]:
    """``n`` sequential prompt_async requests (after ``WARMUP``); client-side seconds each.

    With ``hub``, each next request waits for the previous prompt's ``session.idle``.
    """
    times: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        for i in range(WARMUP + n):
            sent = time.perf_counter()
            response = await client.post(f"/session/{session_id}/prompt_async", json=body)
            took = time.perf_counter() - sent
            if response.status_code != 204:
                raise BenchError(f"prompt_async -> {response.status_code} {response.text[:200]}")
            if hub is not None:
                await hub.wait_idle(session_id, sent)
            if i >= WARMUP:
                times.append(took)
    return times


async def measure_roost(server: ServerProcess, n: int, no_reply: bool) -> list[float]:
    """One batch against Roost on a new session."""
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as api,
        httpx.AsyncClient(timeout=httpx.Timeout(REQUEST_TIMEOUT_S, read=None)) as stream,
    ):
        session_id = await create_session(api, "admission-floor")
        if no_reply:
            body = prompt_body("hi", noReply=True)
            return await admissions(server.url, n, session_id=session_id, body=body, hub=None)
        hub = IdleHub(stream, server.url)
        reader = asyncio.create_task(hub.run())
        try:
            await hub.wait_connected()
            return await admissions(
                server.url, n, session_id=session_id, body=prompt_body("hi"), hub=hub
            )
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    """Measure every server ``--rounds`` times in turn and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="per server per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sync-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_floor:
        serve_floor(args.sync_to)
        return 0
    results: dict[str, list[float]] = {}
    by_round: dict[str, list[float]] = {}
    with ScriptedLLM() as llm, tempfile.TemporaryDirectory(prefix="roost-floor-") as tmp_dir:
        tmp = Path(tmp_dir)
        project = tmp / "project"
        project.mkdir()
        (project / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
        floor = FloorProcess(None)
        synced = FloorProcess(tmp / "floor.dat")
        roost = ServerProcess(project, tmp / "roost" / "roost.db", "FULL")
        try:
            roost.start()
            batches: dict[str, Callable[[], list[float]]] = {
                "floor": lambda: asyncio.run(
                    admissions(floor.url, args.requests, session_id="ses_x", body={}, hub=None)
                ),
                "floor+fsync": lambda: asyncio.run(
                    admissions(synced.url, args.requests, session_id="ses_x", body={}, hub=None)
                ),
                "roost noReply": lambda: asyncio.run(measure_roost(roost, args.requests, True)),
                "roost turn": lambda: asyncio.run(measure_roost(roost, args.requests, False)),
            }
            for r in range(args.rounds):
                for name, batch in batches.items():
                    times = batch()
                    results.setdefault(name, []).extend(times)
                    by_round.setdefault(name, []).append(percentile(times, 50) * 1000)
                    log(f"round {r + 1} {name}: p50 {by_round[name][-1]:.2f} ms")
        except BenchError as exc:
            log(f"admission_floor: {exc}")
            return 1
        finally:
            roost.stop()
            floor.stop()
            synced.stop()
    print(
        f"Sequential prompt_async → 204, client side, {args.requests} requests x "
        f"{args.rounds} rounds per server (ms)\n"
    )
    print("| server | p50 | p90 | p99 | p50 per round |")
    print("|---|---|---|---|---|")
    for name, times in results.items():
        rounds = ", ".join(f"{v:.2f}" for v in by_round[name])
        print(
            f"| {name} | {percentile(times, 50) * 1000:.2f} | {percentile(times, 90) * 1000:.2f} "
            f"| {percentile(times, 99) * 1000:.2f} | {rounds} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
