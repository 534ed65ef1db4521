"""SIGKILL ``roost serve`` during an MCP call, restart it on the same port and database: no
orphaned MCP server process, the interrupted call is a terminal part (not replayed), the
session idle, and the server's MCP server started afresh."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.mcp_servers import alive, local_entry, roost_with_mcp, wait_status
from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.crash


def test_sigkill_during_an_mcp_call_then_restart_leaves_no_orphan_and_an_idle_session(
    project: Path, tmp_path: Path, llm: ScriptedLLM
) -> None:
    pid_file = tmp_path / "mcp-pids"
    entry = local_entry(environment={"MCP_TEST_PID_FILE": str(pid_file)})
    server = roost_with_mcp(project, tmp_path, llm.base_url, {"echo": entry})
    pids: list[int] = []
    try:
        wait_status(server, "echo", "connected")
        llm.enqueue(tool_turn("echo_hang", {}), text_turn("resumed after the restart"))
        sid = server.create_session()["id"]
        assert (
            server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
        )

        def running() -> bool:
            parts = [p for m in server.messages(sid) for p in m["parts"] if p["type"] == "tool"]
            return bool(parts) and parts[-1]["state"]["status"] == "running"

        wait_for(running, what="the MCP call running")
        (first,) = pids = [int(p) for p in pid_file.read_text().split()]
        port = server.port
        server.kill()  # the MCP server, in its own group, outlives it: only a recovery kills it
        # (no check that it survived: any Roost starting on this host, a parallel test's
        # included, kills the tagged processes of dead servers)

        restarted_at = time.monotonic()
        server.start()
        assert server.port == port
        wait_for(lambda: not alive(first), timeout_s=15, what="recovery to kill the orphan")
        print(f"MCP-TIMING orphan killed {int((time.monotonic() - restarted_at) * 1000)} ms")
        # Recovery shows the session idle for a moment before the resumed turn starts: wait
        # for the resumed reply, then for idle.
        wait_for(
            lambda: (
                server.messages(sid)[-1]["parts"][-1:]
                and server.messages(sid)[-1]["parts"][-1]["type"] in ("text", "step-finish")
            ),
            timeout_s=60,
            what="the resumed turn's reply",
        )
        messages = server.wait_idle(sid, timeout_s=60)
        (part,) = [p for m in messages for p in m["parts"] if p["type"] == "tool"]
        assert part["state"]["status"] == "error"
        assert part["state"]["error"] == "interrupted: server restarted"
        assert messages[-1]["parts"][-1]["type"] in ("text", "step-finish")
        assert server.get("/session/status").json() == {}
        # The call was not replayed: the resumed turn's request sees it answered with an error.
        tool_results = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
        assert tool_results and "interrupted" in tool_results[-1]["content"]
        wait_status(server, "echo", "connected")
        pids = [int(p) for p in pid_file.read_text().split()]
        assert len(pids) == 2 and alive(pids[1])
        server.terminate()
        assert not alive(pids[1]), "a graceful stop stops the MCP server too"
    finally:
        server.close()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
