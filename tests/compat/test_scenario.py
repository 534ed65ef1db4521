"""Issue #3's end-to-end scenario through OpenCode's own clients: a multi-step turn that reads,
greps, edits and runs a file, asks a question answered over HTTP, and delegates to a child
session that runs bash.

``opencode run`` is non-interactive: it sends ``tools: {"question": false}`` with its prompt,
so through it the model is not offered the question tool and the scripted turn asks nothing;
the JS SDK path answers the question over HTTP."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import OPENCODE_BIN, require_node_modules
from tests.compat.test_js_sdk import run_sdk
from tests.compat.test_opencode_cli import opencode_env
from tests.support.scripted_llm import ScriptedLLM, Turn, text_turn, tool_turn
from tests.support.server import MODEL_ID, PROVIDER_ID, RoostServer

pytestmark = pytest.mark.compat

QUESTION = {
    "questions": [
        {
            "question": "Ship it?",
            "header": "Ship",
            "options": [
                {"label": "Yes", "description": "ship"},
                {"label": "No", "description": "wait"},
            ],
        }
    ]
}


def script(llm: ScriptedLLM, project: Path, *, ask: bool = True) -> None:
    (project / "app.py").write_text("# TODO: greet\nprint('hello')\n")
    turns: list[Turn] = [
        tool_turn("read", {"filePath": "app.py"}),
        tool_turn("grep", {"pattern": "TODO", "include": "*.py"}),
        tool_turn(
            "edit",
            {
                "filePath": "app.py",
                "oldString": "print('hello')",
                "newString": "print('hello, roost')",
            },
        ),
        tool_turn("bash", {"command": "python3 app.py"}),
    ]
    if ask:
        turns.append(tool_turn("question", QUESTION))
    turns += [
        tool_turn(
            "task", {"description": "Child check", "prompt": "run echo", "subagent_type": "general"}
        ),
        tool_turn("bash", {"command": "echo from-child"}),  # the child's first step
        text_turn("child finished"),  # the child's answer
        text_turn("all done: edited, ran, asked and delegated"),
    ]
    llm.enqueue(*turns)


def check(server: RoostServer, project: Path, session_id: str, *, ask: bool = True) -> None:
    msgs = server.messages(session_id)
    tools = [p for m in msgs for p in m["parts"] if p["type"] == "tool"]
    expected = ["read", "grep", "edit", "bash", "question", "task"]
    assert [t["tool"] for t in tools] == [t for t in expected if ask or t != "question"]
    assert all(t["state"]["status"] == "completed" for t in tools), [
        (t["tool"], t["state"]) for t in tools if t["state"]["status"] != "completed"
    ]
    by_tool: dict[str, dict[str, Any]] = {t["tool"]: t["state"] for t in tools}
    assert "hello, roost" in by_tool["bash"]["output"]
    if ask:
        assert '"Ship it?"="Yes"' in by_tool["question"]["output"]
    assert "child finished" in by_tool["task"]["output"]
    assert (project / "app.py").read_text() == "# TODO: greet\nprint('hello, roost')\n"
    child = by_tool["task"]["metadata"]["sessionId"]
    child_tools = [p for m in server.messages(child) for p in m["parts"] if p["type"] == "tool"]
    assert [(t["tool"], t["state"]["status"]) for t in child_tools] == [("bash", "completed")]
    assert child_tools[0]["state"]["output"] == "from-child\n"
    for sid in (session_id, child):
        for m in server.messages(sid):
            assert "completed" in m["info"]["time"] or m["info"]["role"] == "user"
            assert "error" not in m["info"]
    assert server.get("/question").json() == []
    assert server.get("/permission").json() == []
    assert server.get("/session/status").json() == {}


def test_scenario_through_the_js_sdk(server: RoostServer, llm: ScriptedLLM) -> None:
    script(llm, server.directory)
    summary = run_sdk(server, "improve app.py", timeout_ms=60000)
    assert summary["answered"] == 1
    assert summary["text"] == "all done: edited, ran, asked and delegated"
    check(server, server.directory, summary["sessionID"])


def test_scenario_through_opencode_run_attach(
    server: RoostServer, llm: ScriptedLLM, tmp_path: Path
) -> None:
    require_node_modules()
    script(llm, server.directory, ask=False)
    home = tmp_path / "opencode-home"
    home.mkdir()
    proc = subprocess.Popen(
        [
            str(OPENCODE_BIN),
            "run",
            "--attach",
            server.url,
            "-m",
            f"{PROVIDER_ID}/{MODEL_ID}",
            "improve app.py",
        ],
        cwd=server.directory,
        env=opencode_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err + out
    assert "all done: edited, ran, asked and delegated" in out
    offered = {t["function"]["name"] for t in llm.requests[0]["tools"]}
    assert "question" not in offered and {"read", "bash", "task"} <= offered
    session = next(s for s in server.get("/session?roots=true").json())
    check(server, server.directory, session["id"], ask=False)
