"""Abort latency: ``POST /abort`` → the session idle and the tool's process group gone.

Each round starts a ``bash`` tool whose command ignores SIGTERM (``trap '' TERM``) and keeps a
child ``sleep`` in its group, waits until it runs, then aborts and measures, client side:
the abort request itself, until ``session.idle`` arrives on ``/event``, and until no process
of the group is left. Prints p50/p99/max over the rounds. Run: ``.venv/bin/python
bench/abort_bench.py [--rounds 30]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.scripted_llm import ScriptedLLM, tool_turn  # noqa: E402
from tests.support.server import RoostServer, project_config  # noqa: E402


def pct(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _gone(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    request_ms, idle_ms, killed_ms = [], [], []
    with tempfile.TemporaryDirectory() as tmp, ScriptedLLM() as llm:
        project = Path(tmp) / "project"
        project.mkdir()
        (project / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
        server = RoostServer(project, Path(tmp) / "abort.db").start()
        try:
            for n in range(args.rounds):
                pid_file = project / f"pids-{n}"
                command = f"trap '' TERM; sleep 60 & echo $$ $! > {pid_file}; wait"
                llm.enqueue(tool_turn("bash", {"command": command}))
                sid = server.create_session()["id"]
                idle = threading.Event()

                def listen(sid: str = sid, idle: threading.Event = idle) -> None:
                    with (
                        httpx.Client(timeout=30) as client,
                        client.stream("GET", server.url + "/event") as response,
                    ):
                        for line in response.iter_lines():
                            if '"session.idle"' in line and sid in line:
                                idle.set()
                                return

                listener = threading.Thread(target=listen, daemon=True)
                listener.start()
                server.post(
                    f"/session/{sid}/prompt_async",
                    json={"parts": [{"type": "text", "text": "hang"}]},
                )
                deadline = time.monotonic() + 20
                while not (pid_file.exists() and len(pid_file.read_text().split()) == 2):
                    if time.monotonic() > deadline:
                        raise TimeoutError("the command did not start")
                    time.sleep(0.01)
                pids = [int(p) for p in pid_file.read_text().split()]
                started = time.perf_counter()
                server.post(f"/session/{sid}/abort")
                request_ms.append((time.perf_counter() - started) * 1000)
                idle.wait(10)
                idle_ms.append((time.perf_counter() - started) * 1000)
                while not _gone(pids):
                    time.sleep(0.005)
                killed_ms.append((time.perf_counter() - started) * 1000)
        finally:
            server.close()
    print(f"| abort with a SIGTERM-ignoring bash ({args.rounds} rounds) | p50 | p99 | max |")
    print("|---|---|---|---|")
    for name, values in (
        ("POST /abort answered", request_ms),
        ("session.idle received", idle_ms),
        ("process group gone", killed_ms),
    ):
        print(
            f"| {name} | {pct(values, 50):.0f} ms | {pct(values, 99):.0f} ms | "
            f"{max(values):.0f} ms |"
        )


if __name__ == "__main__":
    main()
