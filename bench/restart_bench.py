"""How long an operator's restart takes: SIGKILL ``roost serve`` while tool processes run, then
start it again on the same port and database, as systemd or a container does.

Each round starts N sessions whose bash calls run ``sleep 300``, waits until every command runs,
SIGKILLs the server's process group (the tools live in their own groups and survive), restarts
it on the same port and database, and measures:

- kill → answering: from the SIGKILL to the first ``GET /global/health`` answered on that port;
- kill → orphans gone: until recovery has killed every orphaned tool process;
- kill → idle: until no session is busy any more.

    .venv/bin/python bench/restart_bench.py [--tools 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer, project_config, prompt_body


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _running_pid(server: RoostServer, sid: str) -> int | None:
    for message in server.messages(sid):
        for part in message["parts"]:
            state = part.get("state") or {}
            output = (state.get("metadata") or {}).get("output", "")
            if part["type"] == "tool" and state.get("status") == "running" and output.strip():
                return int(output.split()[0])
    return None


def _until(probe: object, timeout_s: float = 60) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if probe():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(0.005)
    raise TimeoutError("the server did not get there in time")


def one_round(root: Path, tools: int) -> tuple[float, float, float]:
    """One kill and restart; returns the three times in ms."""
    with ScriptedLLM() as llm:
        project = root / "project"
        project.mkdir(parents=True)
        (project / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
        llm.enqueue(*[tool_turn("bash", {"command": "echo $$; exec sleep 300"})] * tools)
        llm.enqueue(*[text_turn("done")] * tools)
        server = RoostServer(project, root / "roost.db").start()
        try:
            sessions = []
            for _ in range(tools):
                sid = server.create_session()["id"]
                server.post(f"/session/{sid}/prompt_async", json=prompt_body("wait"))
                sessions.append(sid)
            pids: list[int] = []
            for sid in sessions:
                _until(lambda s=sid: _running_pid(server, s) is not None)
                pid = _running_pid(server, sid)
                assert pid is not None
                pids.append(pid)
            url = server.url
            killed = time.monotonic()
            server.kill()
            server.start()  # same port and database (RoostServer keeps both)

            def answers() -> bool:
                try:
                    return httpx.get(url + "/global/health", timeout=1).status_code == 200
                except httpx.TransportError:
                    return False

            answering = _until(answers)
            gone = _until(lambda: not any(_alive(p) for p in pids))
            idle = _until(lambda: server.get("/session/status").json() == {})
            return (
                (answering - killed) * 1000,
                (gone - killed) * 1000,
                (idle - killed) * 1000,
            )
        finally:
            server.close()


def main() -> None:
    """Run the rounds and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tools", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for n in range(args.rounds):
        with tempfile.TemporaryDirectory() as scratch:
            rows.append(one_round(Path(scratch) / f"round-{n}", args.tools))
    print(f"| SIGKILL with {args.tools} tool processes alive | p50 ms | min | max |")
    print("|---|---|---|---|")
    names = ("kill → answering on the same port", "kill → orphans gone", "kill → sessions idle")
    for i, name in enumerate(names):
        values = [r[i] for r in rows]
        print(
            f"| {name} | {statistics.median(values):,.0f} | {min(values):,.0f} | "
            f"{max(values):,.0f} |"
        )


if __name__ == "__main__":
    main()
