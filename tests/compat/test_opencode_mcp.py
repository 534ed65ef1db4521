"""OpenCode's own CLI (``opencode run --attach``) using an MCP tool that Roost serves.

The CLI knows nothing about the MCP server: Roost connects to it, offers its tools to the model
and runs the call; the CLI shows the tool part it receives on ``/event`` and the final answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat.test_opencode_cli import opencode_run
from tests.support.mcp_servers import local_entry, roost_with_mcp, wait_status
from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn

pytestmark = pytest.mark.compat


def test_opencode_run_attach_with_an_mcp_tool(
    project: Path, tmp_path: Path, llm: ScriptedLLM
) -> None:
    server = roost_with_mcp(project, tmp_path, llm.base_url, {"echo": local_entry()})
    try:
        wait_status(server, "echo", "connected")
        llm.enqueue(
            tool_turn("echo_text_upper-v1", {"text": "through mcp"}),
            text_turn("the server said THROUGH MCP"),
        )
        done = opencode_run(server, tmp_path, "shout it")
        assert done.returncode == 0, done.stderr + done.stdout
        assert "the server said THROUGH MCP" in done.stdout
        (session,) = server.get("/session").json()
        parts = [p for m in server.messages(session["id"]) for p in m["parts"]]
        (tool,) = [p for p in parts if p["type"] == "tool"]
        assert tool["tool"] == "echo_text_upper-v1"
        assert tool["state"]["status"] == "completed"
        assert tool["state"]["output"] == "THROUGH MCP"
        # The CLI prints the tool call it saw on /event, under the MCP tool's name.
        assert 'echo_text_upper-v1 {"text":"through mcp"}' in done.stderr
    finally:
        server.close()
