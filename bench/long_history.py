"""A turn in a long session: does its cost grow with the history before the last compaction?

    .venv/bin/python bench/long_history.py                       # 100 and 5,000 turns
    .venv/bin/python bench/long_history.py --sizes 50 500 --prompts 10    # smoke run

For each size N, a fresh SQLite file gets one session of N turns, each a user message (one text
part of 2,000 characters) and its completed assistant reply (step-start, a text part of 2,000
characters, step-finish), written in process through the store's own write path (``Tx.append``)
as a server would have stored them. A real ``roost serve`` (127.0.0.1, a free port, the
scripted LLM on loopback) then compacts the session once (``POST /session/{id}/summarize``,
waiting for ``session.idle``) and answers ``--prompts`` prompts in a row with the synchronous
``POST /session/{id}/message``. A thread sends ``GET /global/health`` every 10 ms meanwhile.

Printed per size: the turn's latency (client side, p50 / p99 ms), the server's CPU time per
turn (``/proc/PID/stat``, ms), the probes' p99 and max (ms), and how many messages the last
model request carried (from the scripted LLM), which shows the compaction took effect.

With ``--no-compact`` the session is not compacted: each turn sends the model the whole history
(the case of a session that never filled its model's context window).

A second table: before the compaction, ``--get-all`` reads of the whole session
(``GET /session/{id}/message`` without ``limit``) from another process, one after the other,
while the probes run: the body's size, the read's latency (p50 / max ms) and the probes' p99 and
max (ms). Every loop is bounded; the server is stopped in a ``finally``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.big_body import Probe, pct  # noqa: E402
from tests.support.histories import fill_long_session  # noqa: E402
from tests.support.scripted_llm import MODEL_ID, ScriptedLLM  # noqa: E402
from tests.support.server import PROVIDER_ID, RoostServer, project_config  # noqa: E402

_IDLE_TIMEOUT_S = 120.0


def _cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _wait_idle(client: httpx.Client, url: str, sid: str) -> None:
    deadline = time.monotonic() + _IDLE_TIMEOUT_S
    while time.monotonic() < deadline:
        if sid not in client.get(f"{url}/session/status").json():
            return
        time.sleep(0.05)
    raise RuntimeError(f"session {sid} still busy after {_IDLE_TIMEOUT_S:.0f} s")


def _get_all(url: str, sid: str, times: int) -> tuple[list[float], int]:
    """Read the whole session ``times`` times, 0.1 s apart (in a child process, so that
    reading 26 MiB never holds the probe thread's GIL); latencies (ms) and the body's bytes."""
    latencies: list[float] = []
    size = 0
    with httpx.Client(timeout=_IDLE_TIMEOUT_S) as client:
        for _ in range(times):
            t0 = time.perf_counter()
            response = client.get(f"{url}/session/{sid}/message")
            response.raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)
            size = len(response.content)
            time.sleep(0.1)
    return latencies, size


def _measure(turns: int, prompts: int, get_all: int, compact: bool) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLM() as llm:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
        db_path = Path(tmp) / "long.db"
        print(f"{turns} turns: filling", file=sys.stderr)
        sid = asyncio.run(fill_long_session(db_path, turns, str(project)))
        server = RoostServer(project, db_path).start()
        assert server.proc is not None
        try:
            with Probe(server.url) as probe, ProcessPoolExecutor(1) as reader:
                started = time.perf_counter()
                reads, size = reader.submit(_get_all, server.url, sid, get_all).result()
                during = probe.between(started, time.perf_counter())
            read_row = (
                f"| {turns:,} | {size / 2**20:.1f} | {get_all} | {statistics.median(reads):.0f} "
                f"| {max(reads):.0f} | {pct(during, 99):.1f} | {max(during):.1f} |"
            )
            with httpx.Client(timeout=_IDLE_TIMEOUT_S) as client:
                model = {"providerID": PROVIDER_ID, "modelID": MODEL_ID}
                if compact:
                    done = client.post(f"{server.url}/session/{sid}/summarize", json=model)
                    done.raise_for_status()
                    _wait_idle(client, server.url, sid)
                print(f"{turns} turns: prompting", file=sys.stderr)
                latencies: list[float] = []
                with Probe(server.url) as probe:
                    started = time.perf_counter()
                    cpu0 = _cpu_ms(server.proc.pid)
                    for n in range(prompts):
                        t0 = time.perf_counter()
                        answer = client.post(
                            f"{server.url}/session/{sid}/message",
                            json={
                                "parts": [{"type": "text", "text": f"prompt {n}"}],
                                "model": model,
                            },
                        )
                        answer.raise_for_status()
                        latencies.append((time.perf_counter() - t0) * 1000)
                    cpu_ms = (_cpu_ms(server.proc.pid) - cpu0) / prompts
                    probes = probe.between(started, time.perf_counter())
                sent = len(llm.requests[-1]["messages"])
        finally:
            server.close()
    turn_row = (
        f"| {turns:,} | {2 * turns:,} | {prompts} | {statistics.median(latencies):.1f} | "
        f"{pct(latencies, 99):.1f} | {cpu_ms:.1f} | {pct(probes, 99):.1f} | {max(probes):.1f} | "
        f"{sent} |"
    )
    return turn_row, read_row


def main() -> None:
    """Measure each ``--sizes`` value and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 5000], help="turns stored")
    parser.add_argument("--prompts", type=int, default=30, help="prompts measured per size")
    parser.add_argument("--get-all", type=int, default=10, help="whole-session reads per size")
    parser.add_argument(
        "--no-compact", action="store_true", help="prompt the whole history (no summary first)"
    )
    args = parser.parse_args()
    compact = not args.no_compact
    rows = [_measure(turns, args.prompts, args.get_all, compact) for turns in args.sizes]
    print(
        "| turns stored | messages | prompts | turn p50 ms | turn p99 ms | server CPU ms / turn "
        "| probe p99 ms | probe max ms | messages in the last model request |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(turn for turn, _ in rows))
    print()
    print(
        "| turns stored | body MiB | reads | read p50 ms | read max ms | probe p99 ms "
        "| probe max ms |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(read for _, read in rows))


if __name__ == "__main__":
    main()
