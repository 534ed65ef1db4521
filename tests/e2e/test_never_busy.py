"""Nothing answers "busy" forever: delete, revert, abort and fork all work while a tool hangs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.events import EventCollector, types_of, until_idle
from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for, written

pytestmark = pytest.mark.e2e

QUESTION = {
    "questions": [
        {
            "question": "Continue?",
            "header": "Go",
            "options": [{"label": "Yes", "description": "go on"}],
        }
    ]
}


def _running_tool(server: RoostServer, sid: str) -> dict[str, Any] | None:
    for m in server.messages(sid):
        for p in m["parts"]:
            if p["type"] == "tool" and p["state"]["status"] == "running":
                part: dict[str, Any] = p
                return part
    return None


def _hang_question(server: RoostServer, llm: ScriptedLLM) -> tuple[str, dict[str, Any]]:
    llm.enqueue(tool_turn("question", QUESTION))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("ask")).status_code == 204
    part = wait_for(lambda: _running_tool(server, sid), what="a running question")
    return sid, part


def _hang_bash(server: RoostServer, llm: ScriptedLLM, pid_file: Path) -> tuple[str, int]:
    llm.enqueue(tool_turn("bash", {"command": f"sleep 60 & echo $! > {pid_file}; wait"}))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("run")).status_code == 204
    pid = int(wait_for(lambda: written(pid_file), what="sleep started"))
    return sid, pid


def _dead(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_deleting_a_message_while_a_question_hangs_aborts_then_deletes(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, part = _hang_question(server, llm)
    response = server.request("DELETE", f"/session/{sid}/message/{part['messageID']}")
    assert response.status_code == 200 and response.json() is True
    assert all(m["info"]["id"] != part["messageID"] for m in server.messages(sid))
    assert server.get("/question").json() == []
    assert server.get("/session/status").json() == {}


def test_revert_while_bash_hangs_aborts_kills_and_marks_the_session(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, pid = _hang_bash(server, llm, server.directory / "pid")
    user = server.messages(sid)[0]["info"]["id"]
    response = server.post(f"/session/{sid}/revert", json={"messageID": user})
    assert response.status_code == 200
    revert = response.json()["revert"]
    assert revert["messageID"] == user
    # The command wrote only its pid file, in the project: the revert takes it away again.
    assert "deleted file mode" in revert["diff"] and "a/pid" in revert["diff"]
    assert not (server.directory / "pid").exists()
    wait_for(lambda: _dead(pid), timeout_s=5, what="the sleep killed")
    assert server.get("/session/status").json() == {}
    llm.enqueue(text_turn("fresh start"))
    msgs = server.prompt(sid, "again")
    assert [m["info"]["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[0]["parts"][0]["text"] == "again"
    assert "revert" not in server.get(f"/session/{sid}").json()


def test_abort_is_idempotent_and_emits_one_idle(server: RoostServer, llm: ScriptedLLM) -> None:
    sid, _ = _hang_question(server, llm)
    frames: list[dict[str, Any]] = []
    for _, frame in server.events(last_event_id="0"):
        frames.append(frame)
        if frame["type"] == "question.asked":
            break
    head = len(frames)
    assert server.post(f"/session/{sid}/abort").json() is True
    assert server.post(f"/session/{sid}/abort").json() is True
    server.wait_idle(sid)
    replay = [f for _, f in _collect(server, until_idle_after=head)]
    idles = [f for f in replay[head:] if f["type"] == "session.idle"]
    assert len(idles) == 1


def _collect(server: RoostServer, until_idle_after: int) -> list[tuple[str | None, dict[str, Any]]]:
    out = []
    for item in server.events(last_event_id="0", timeout_s=5):
        out.append(item)
        if len(out) > until_idle_after and item[1]["type"] == "session.idle":
            # keep reading briefly for a second idle that must not come
            break
    return out


def test_running_tool_parts_cannot_be_deleted_or_patched_until_abort(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, part = _hang_question(server, llm)
    path = f"/session/{sid}/message/{part['messageID']}/part/{part['id']}"
    refused = server.request("DELETE", path)
    assert refused.status_code == 409
    assert refused.json()["_tag"] == "SessionBusyError"
    assert "abort" in refused.json()["message"]
    patched = server.request("PATCH", path, json={**part, "state": {"status": "completed"}})
    assert patched.status_code == 409
    server.post(f"/session/{sid}/abort")
    assert server.request("DELETE", path).json() is True


def test_fork_never_copies_a_running_part_as_running(server: RoostServer, llm: ScriptedLLM) -> None:
    sid, _ = _hang_question(server, llm)
    fork = server.post(f"/session/{sid}/fork", json={})
    assert fork.status_code == 200
    copied = [
        p for m in server.messages(fork.json()["id"]) for p in m["parts"] if p["type"] == "tool"
    ]
    assert copied and all(p["state"]["status"] == "error" for p in copied)
    server.post(f"/session/{sid}/abort")


def test_deleting_a_session_while_bash_hangs_stops_the_process(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, pid = _hang_bash(server, llm, server.directory / "pid")
    assert server.request("DELETE", f"/session/{sid}").json() is True
    wait_for(lambda: _dead(pid), timeout_s=5, what="the sleep killed")
    assert server.get(f"/session/{sid}").status_code == 404
    assert server.get("/session/status").json() == {}


def test_a_prompt_queued_behind_an_aborted_turn_runs_next(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, _ = _hang_question(server, llm)
    queued = server.post(f"/session/{sid}/prompt_async", json=prompt_body("next one"))
    assert queued.status_code == 204
    llm.enqueue(text_turn("answered after the abort"))
    assert server.post(f"/session/{sid}/abort").json() is True

    def answered() -> list[dict[str, Any]] | None:
        replies = [m for m in server.messages(sid) if m["info"]["role"] == "assistant"]
        last = replies[-1] if replies else None
        done = last is not None and "completed" in last["info"]["time"] and len(replies) == 2
        return replies if done else None

    replies = wait_for(answered, what="the queued prompt answered")
    assert replies[0]["info"]["error"]["name"] == "MessageAbortedError"
    assert [p["text"] for p in replies[1]["parts"] if p["type"] == "text"] == [
        "answered after the abort"
    ]


def test_abort_of_an_idle_session_emits_idle_as_opencode_does(server: RoostServer) -> None:
    # A TUI left showing "busy" (it missed a turn's end across a restart) recovers on these.
    sid = server.create_session()["id"]
    with EventCollector(server.url) as events:
        assert server.post(f"/session/{sid}/abort").json() is True
        frames = events.wait_until(until_idle(sid), what="session.idle")
    assert types_of(frames) == ["session.status", "session.idle"]
    assert frames[0][1]["properties"]["status"] == {"type": "idle"}
    assert server.get("/session/status").json() == {}
