"""``bash`` through a real server: streamed output, abort that kills the whole process group."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer, project_config, prompt_body
from tests.support.waiting import wait_for, written

pytestmark = pytest.mark.e2e


def _tool_part(server: RoostServer, sid: str) -> dict[str, Any] | None:
    parts = [p for m in server.messages(sid) for p in m["parts"] if p["type"] == "tool"]
    return parts[-1] if parts else None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_bash_runs_in_the_project_and_its_output_is_stored(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(tool_turn("bash", {"command": "pwd; echo hello-from-bash"}), text_turn("ran"))
    sid = server.create_session()["id"]
    server.prompt(sid, "run it")
    part = _tool_part(server, sid)
    assert part is not None and part["state"]["status"] == "completed"
    assert part["state"]["output"] == f"{server.directory}\nhello-from-bash\n"
    assert part["state"]["metadata"]["exit"] == 0
    assert part["state"]["title"] == "pwd; echo hello-from-bash"
    assert (
        "time" in part["state"] and part["state"]["time"]["end"] >= part["state"]["time"]["start"]
    )


def test_running_bash_streams_output_into_the_part(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(
        tool_turn("bash", {"command": "echo first; sleep 3; echo second"}), text_turn("done")
    )
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204

    def streamed() -> dict[str, Any] | None:
        part = _tool_part(server, sid)
        if part is None or part["state"]["status"] != "running":
            return None
        return part if "first" in (part["state"].get("metadata") or {}).get("output", "") else None

    part = wait_for(streamed, what="streamed output while running")
    assert "second" not in part["state"]["metadata"]["output"]
    server.wait_idle(sid)


def test_abort_kills_a_command_that_ignores_sigterm(server: RoostServer, llm: ScriptedLLM) -> None:
    pid_file = server.directory / "pids"  # inside the project: no external_directory ask
    command = f"trap '' TERM; sleep 60 & echo $$ $! > {pid_file}; wait"
    llm.enqueue(tool_turn("bash", {"command": command}))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("hang")).status_code == 204
    pids = wait_for(lambda: (written(pid_file) or "").split(), what="pids")
    shell, sleeper = (int(p) for p in pids)
    assert _alive(shell) and _alive(sleeper)
    started = time.monotonic()
    assert server.post(f"/session/{sid}/abort").json() is True
    msgs = server.wait_idle(sid)
    wait_for(
        lambda: not _alive(shell) and not _alive(sleeper),
        timeout_s=5,
        what="the process group gone",
    )
    assert time.monotonic() - started < 5
    part = _tool_part(server, sid)
    assert part is not None and part["state"]["status"] == "error"
    assert part["state"]["error"] == "aborted"
    assert msgs[-1]["info"]["error"]["name"] == "MessageAbortedError"
    assert server.get("/session/status").json() == {}


def test_aborting_a_parent_kills_the_bash_of_its_child(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    pid_file = server.directory / "child-pids"
    command = f"sleep 60 & echo $! > {pid_file}; wait"
    llm.enqueue(
        tool_turn("task", {"description": "sleepy", "prompt": "sleep", "subagent_type": "general"}),
        tool_turn("bash", {"command": command}),
    )
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    sleeper = int(wait_for(lambda: written(pid_file), what="the child's sleep"))
    assert _alive(sleeper)
    assert server.post(f"/session/{sid}/abort").json() is True
    server.wait_idle(sid)
    wait_for(lambda: not _alive(sleeper), timeout_s=5, what="the child's sleep killed")
    child = server.get(f"/session/{sid}/children").json()[0]["id"]
    child_part = _tool_part(server, child)
    assert child_part is not None and child_part["state"]["status"] == "error"


def test_cp_outside_the_project_asks_external_directory_and_writes_only_once_approved(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    (server.directory / "x").write_text("copied\n")
    outside = server.directory.parent / "y"
    llm.enqueue(tool_turn("bash", {"command": "cp x ../y"}), text_turn("copied"))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("copy")).status_code == 204
    pending = wait_for(lambda: server.get("/permission").json(), what="a pending permission")
    assert [(p["permission"], p["patterns"]) for p in pending] == [
        ("external_directory", [f"{server.directory.parent}/*"])
    ]
    assert pending[0]["always"] == [f"{server.directory.parent}/*"]
    assert pending[0]["tool"]["callID"]
    assert not outside.exists()  # asked before anything ran

    reply = server.post(f"/permission/{pending[0]['id']}/reply", json={"reply": "once"})
    assert reply.json() is True
    server.wait_idle(sid)
    part = _tool_part(server, sid)
    assert part is not None and part["state"]["status"] == "completed"
    assert outside.read_text() == "copied\n"


def test_rejecting_the_external_directory_leaves_the_outside_untouched(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    outside = server.directory.parent / "redirected"
    llm.enqueue(tool_turn("bash", {"command": "echo hi > ../redirected"}), text_turn("refused"))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("write")).status_code == 204
    pending = wait_for(lambda: server.get("/permission").json(), what="a pending permission")
    assert pending[0]["permission"] == "external_directory"
    server.post(f"/permission/{pending[0]['id']}/reply", json={"reply": "reject"})
    server.wait_idle(sid)
    part = _tool_part(server, sid)
    assert part is not None and part["state"]["status"] == "error"
    assert not outside.exists()


def test_a_bash_deny_rule_matches_each_command_of_a_list(
    project: Path, tmp_path: Path, llm: ScriptedLLM
) -> None:
    config = project_config(llm.base_url, permission={"bash": {"rm *": "deny"}})
    (project / "opencode.json").write_text(json.dumps(config))
    (project / "precious").write_text("keep me\n")
    llm.enqueue(tool_turn("bash", {"command": "echo hi && rm -f precious"}), text_turn("denied"))
    server = RoostServer(project, tmp_path / "deny.db").start()
    try:
        sid = server.create_session()["id"]
        server.prompt(sid, "clean up")
        part = _tool_part(server, sid)
    finally:
        server.close()
    assert part is not None and part["state"]["status"] == "error"
    assert "denied" in part["state"]["error"]
    assert (project / "precious").read_text() == "keep me\n"
