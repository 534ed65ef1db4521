"""An operator's restart: SIGKILL with tool processes alive, then ``roost serve`` on the same
port and database, as systemd or a container restarts it."""

from __future__ import annotations

from typing import Any

import psutil
import pytest

from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.crash

TOOLS = 5


def _running_pid(server: RoostServer, sid: str) -> int | None:
    """The pid the session's running bash call printed, once it is streamed."""
    for message in server.messages(sid):
        for part in message["parts"]:
            state: dict[str, Any] = part.get("state") or {}
            output = (state.get("metadata") or {}).get("output", "")
            if part["type"] == "tool" and state.get("status") == "running" and output.strip():
                return int(output.split()[0])
    return None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_restart_on_the_same_port_after_sigkill_with_tools_running(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    # The scripted turns are one queue: every session takes its bash call first, and after
    # the restart each resumed turn gets a closing answer.
    llm.enqueue(*[tool_turn("bash", {"command": "echo $$; exec sleep 300"})] * TOOLS)
    llm.enqueue(*[text_turn("done")] * TOOLS)
    sessions = []
    for _ in range(TOOLS):
        sid = server.create_session()["id"]
        response = server.post(f"/session/{sid}/prompt_async", json=prompt_body("wait"))
        assert response.status_code == 204
        sessions.append(sid)
    pids = []
    for sid in sessions:
        pids.append(wait_for(lambda: _running_pid(server, sid), what="the tool to run"))  # noqa: B023
    port = server.port
    try:
        server.kill()
        # No check that they survived the SIGKILL: the start-up recovery of any other Roost
        # on this host (a parallel test) may already have killed them, as it should.

        server.start()  # same port and database; fails if anything still holds the port
        assert server.port == port
        assert server.get("/global/health").status_code == 200
        wait_for(
            lambda: not any(_alive(pid) for pid in pids),
            timeout_s=10,
            what="recovery to kill the orphaned tool processes",
        )
        for sid in sessions:
            messages = server.wait_idle(sid)
            tools = [p for m in messages for p in m["parts"] if p["type"] == "tool"]
            assert tools[0]["state"]["status"] in ("completed", "error")
    finally:
        for pid in pids:
            if _alive(pid):
                psutil.Process(pid).kill()
