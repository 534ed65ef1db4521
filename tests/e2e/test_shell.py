"""A user's shell command (the TUI's ``!cmd``): a ``bash`` tool part of its own, no model request,
abortable, and never run again by recovery."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import httpx
import psutil
import pytest

from tests.support.openapi import validate
from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import RoostServer
from tests.support.waiting import wait_for, written

pytestmark = pytest.mark.e2e


def _shell(server: RoostServer, sid: str, command: str, **extra: Any) -> httpx.Response:
    return server.post(
        f"/session/{sid}/shell", json={"agent": "build", "command": command, **extra}
    )


def test_a_shell_command_is_stored_as_a_bash_part_without_a_model_request(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    response = _shell(server, sid, "echo hi from $0 in $PWD")
    assert response.status_code == 200, response.text
    reply = response.json()
    validate(reply["info"], "AssistantMessage")
    assert [p["type"] for p in reply["parts"]] == ["step-start", "tool", "step-finish"]
    part = reply["parts"][1]
    validate(part, "ToolPart")
    assert part["tool"] == "bash" and part["state"]["status"] == "completed"
    assert part["state"]["output"] == f"hi from /bin/bash in {server.directory}\n"
    assert part["state"]["input"] == {"command": "echo hi from $0 in $PWD"}
    assert llm.requests == []
    user, assistant = server.messages(sid)
    assert user["parts"][0]["synthetic"] is True
    assert assistant["info"]["id"] == reply["info"]["id"]
    assert server.get("/session/status").json() == {}

    # The model reads the command and its output with the next prompt.
    llm.enqueue(text_turn("I see the output"))
    server.prompt(sid, "what did it print?")
    seen = str(llm.requests[-1]["messages"])
    assert "hi from /bin/bash" in seen and "executed by the user" in seen


def test_a_shell_command_asks_no_permission(project: Any, llm: ScriptedLLM, tmp_path: Any) -> None:
    import json

    from tests.support.server import project_config

    config = project_config(llm.base_url, permission={"bash": "deny"})
    (project / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(project, tmp_path / "deny.db").start()
    try:
        sid = srv.create_session()["id"]
        [part] = [p for p in _shell(srv, sid, "echo typed").json()["parts"] if p["type"] == "tool"]
        assert part["state"]["output"] == "typed\n"
    finally:
        srv.close()


def test_abort_kills_a_running_shell_command(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    pid_file = server.directory / "shell.pid"
    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(_shell(server, sid, f"echo $$ > {pid_file}; exec sleep 300"))
    )
    waiting.start()
    pid = int(wait_for(lambda: written(pid_file), what="the command to start"))
    assert server.get("/session/status").json()[sid]["type"] == "busy"
    assert server.post(f"/session/{sid}/abort").json() is True
    waiting.join(timeout=10)
    [answer] = answers
    [part] = [p for p in answer.json()["parts"] if p["type"] == "tool"]
    assert part["state"]["status"] in ("completed", "error")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert server.get("/session/status").json() == {}


def test_recovery_never_runs_a_shell_command_again(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    marker = server.directory / "runs.log"
    pid_file = server.directory / "shell.pid"
    command = f"echo ran >> {marker}; echo $$ > {pid_file}; exec sleep 300"

    def run_until_killed() -> None:
        with contextlib.suppress(httpx.TransportError):  # the server dies under the request
            _shell(server, sid, command)

    threading.Thread(target=run_until_killed, daemon=True).start()
    wait_for(lambda: written(pid_file), what="the command to start")
    server.kill()
    server.start()
    messages = server.wait_idle(sid)
    [part] = [p for m in messages for p in m["parts"] if p["type"] == "tool"]
    assert part["state"]["status"] == "error"
    assert "interrupted" in part["state"]["error"]
    assert marker.read_text() == "ran\n", "the command ran once"
    assert server.get("/session/status").json() == {}
