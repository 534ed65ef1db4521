"""Replicas on one store: prompts/s, prompt-to-idle and admission with 1, 2 and 3 ``roost serve``
processes on one PostgreSQL database, next to one process on SQLite (issue #11).

    uv run python bench/replica_bench.py                 # 32 sessions x 5 prompts per setup
    uv run python bench/replica_bench.py --sessions 8 --prompts 2     # smoke run

Each setup starts its processes on a fresh store (a private PostgreSQL cluster from
``tests/support/postgres.py``, or a new SQLite file) with the instant scripted LLM. The client
holds one ``GET /event`` stream on the first process (the event feed delivers every process's
events there) and sends each session's prompts in a row with ``prompt_async``, the sessions in
parallel, each prompt to the next process in turn. Admission is the client-side time of the
204; prompt-to-idle runs from just before the POST until that session's ``session.idle``
frame. Failover: two processes with a 5 s lease TTL, one SIGKILLed while its turn runs a bash
call; the time until the other shows the call interrupted (recovered). Every loop is bounded
and every process is stopped in a ``finally``. Prints a Markdown
table on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import aconnect_sse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.postgres import PostgresCluster, server_bin_dir
from tests.support.scripted_llm import ScriptedLLM, tool_turn
from tests.support.server import RoostServer, project_config, prompt_body

_TIMEOUT_S = 60.0
_FAILOVER_TTL_MS = 5000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _load(urls: list[str], sessions: int, prompts: int) -> dict[str, Any]:
    idle: dict[str, asyncio.Queue[float]] = {}
    admissions: list[float] = []
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=_TIMEOUT_S) as api:
        ids = []
        for n in range(sessions):
            response = await api.post(f"{urls[n % len(urls)]}/session", json={"title": f"b{n}"})
            ids.append(response.json()["id"])
            idle[ids[-1]] = asyncio.Queue()
        connected = asyncio.Event()

        async def follow() -> None:
            async with aconnect_sse(api, "GET", f"{urls[0]}/event", timeout=None) as source:
                connected.set()
                async for sse in source.aiter_sse():
                    frame = json.loads(sse.data)
                    if frame.get("type") == "session.idle":
                        sid = frame["properties"]["sessionID"]
                        if sid in idle:
                            idle[sid].put_nowait(time.perf_counter())

        follower = asyncio.create_task(follow())
        await asyncio.wait_for(connected.wait(), _TIMEOUT_S)
        turn = iter(range(10**9))

        async def session_loop(sid: str) -> None:
            for _ in range(prompts):
                url = urls[next(turn) % len(urls)]
                started = time.perf_counter()
                response = await api.post(
                    f"{url}/session/{sid}/prompt_async", json=prompt_body("hi")
                )
                admissions.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 204, response.text
                done = await asyncio.wait_for(idle[sid].get(), _TIMEOUT_S)
                latencies.append((done - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(session_loop(sid) for sid in ids))
        elapsed = time.perf_counter() - began
        follower.cancel()
    return {
        "prompts/s": len(latencies) / elapsed,
        "idle p50 ms": statistics.median(latencies),
        "idle p99 ms": _pct(latencies, 0.99),
        "admission p50 ms": statistics.median(admissions),
        "admission p99 ms": _pct(admissions, 0.99),
    }


def _run(label: str, target: Path | str, replicas: int, project: Path, args: Any) -> dict[str, Any]:
    print(f"{label}: starting {replicas} process(es)", file=sys.stderr)
    servers = []
    try:
        for n in range(replicas):
            servers.append(RoostServer(project, target, args=["--replica", f"r{n}"]).start())
        result = asyncio.run(_load([s.url for s in servers], args.sessions, args.prompts))
    finally:
        for server in servers:
            server.close()
    return {"setup": label, **result}


def _failover_once(label: str, target: Path | str, project: Path, llm: ScriptedLLM) -> float:
    """SIGKILL the replica running a turn; seconds until the other shows it recovered."""
    ttl = ["--lease-ttl-ms", str(_FAILOVER_TTL_MS)]
    a = RoostServer(project, target, args=["--replica", "a", *ttl]).start()
    b = RoostServer(project, target, args=["--replica", "b", *ttl]).start()
    try:
        marker = project / f"failover-{time.monotonic_ns()}"
        llm.enqueue(tool_turn("bash", {"command": f"touch {marker}; sleep 60"}))
        sid = a.create_session()["id"]
        a.post(f"/session/{sid}/prompt_async", json=prompt_body("nap"))
        deadline = time.monotonic() + _TIMEOUT_S
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        killed = time.monotonic()
        a.kill()
        while time.monotonic() < deadline:
            parts = [p for m in b.messages(sid) for p in m["parts"] if p["type"] == "tool"]
            if parts and parts[0]["state"]["status"] == "error":
                return time.monotonic() - killed
            time.sleep(0.02)
        raise TimeoutError(f"{label}: no failover within {_TIMEOUT_S} s")
    finally:
        a.close()
        b.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--prompts", type=int, default=5, help="prompts per session")
    parser.add_argument("--failovers", type=int, default=3, help="failover runs per store")
    args = parser.parse_args()
    bin_dir = server_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    rows = []
    with ScriptedLLM() as llm, tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
        rows.append(_run("SQLite, 1 process", Path(tmp) / "roost.db", 1, project, args))
        failovers: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
        for n in range(args.failovers):
            print(f"failover {n} on SQLite", file=sys.stderr)
            db = Path(tmp) / f"failover-{n}.db"
            failovers["SQLite"].append(_failover_once("SQLite", db, project, llm))
        cluster = PostgresCluster(bin_dir, durable=True).start()
        try:
            for replicas in (1, 2, 3):
                label = f"PostgreSQL, {replicas} process{'es' if replicas > 1 else ''}"
                rows.append(_run(label, cluster.create_database(), replicas, project, args))
            for n in range(args.failovers):
                print(f"failover {n} on PostgreSQL", file=sys.stderr)
                url = cluster.create_database()
                failovers["PostgreSQL"].append(_failover_once("PostgreSQL", url, project, llm))
        finally:
            cluster.close()
    keys = list(rows[0])
    print(
        f"{args.sessions} sessions x {args.prompts} prompts, instant scripted LLM; SQLite "
        "synchronous=FULL, PostgreSQL fsync=on, on this machine\n"
    )
    print("| " + " | ".join(keys) + " |")
    print("|" + " --- |" * len(keys))
    for row in rows:
        cells = [row["setup"], *(f"{row[k]:.1f}" for k in keys[1:])]
        print("| " + " | ".join(cells) + " |")
    print(
        f"\nFailover: SIGKILL of the replica running a bash call until the other shows the "
        f"call interrupted; lease TTL {_FAILOVER_TTL_MS} ms (renewed every third), "
        f"{args.failovers} runs each\n"
    )
    print("| store | min s | median s | max s |\n| --- | --- | --- | --- |")
    for store, times in failovers.items():
        if times:
            print(
                f"| {store} | {min(times):.2f} | {statistics.median(times):.2f} | "
                f"{max(times):.2f} |"
            )


if __name__ == "__main__":
    main()
