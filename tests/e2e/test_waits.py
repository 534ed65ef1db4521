"""Questions, permissions and todos through a real server: durable, listable, cancellable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer, project_config, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

QUESTION = {
    "questions": [
        {
            "question": "Pick a colour",
            "header": "Colour",
            "options": [
                {"label": "Red", "description": "warm"},
                {"label": "Blue", "description": "cool"},
            ],
        }
    ]
}


def _tool_parts(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for m in msgs for p in m["parts"] if p["type"] == "tool"]


def _ask(server: RoostServer, llm: ScriptedLLM) -> tuple[str, dict[str, Any]]:
    llm.enqueue(tool_turn("question", QUESTION))
    sid = server.create_session()["id"]
    assert (
        server.post(f"/session/{sid}/prompt_async", json=prompt_body("ask me")).status_code == 204
    )
    pending = wait_for(lambda: server.get("/question").json(), what="a pending question")
    return sid, pending[0]


def test_question_asked_then_answered_over_http(server: RoostServer, llm: ScriptedLLM) -> None:
    sid, request = _ask(server, llm)
    assert request["sessionID"] == sid and request["id"].startswith("que_")
    assert request["questions"][0]["question"] == "Pick a colour"
    status = server.get("/session/status").json()
    assert status[sid]["type"] == "busy" and status[sid]["reason"] == "question"
    running = _tool_parts(server.messages(sid))
    assert running[0]["state"]["status"] == "running"
    llm.enqueue(text_turn("Red it is"))
    response = server.post(f"/question/{request['id']}/reply", json={"answers": [["Red"]]})
    assert response.status_code == 200 and response.json() is True
    msgs = server.wait_idle(sid)
    part = _tool_parts(msgs)[0]
    assert part["state"]["status"] == "completed"
    assert '"Pick a colour"="Red"' in part["state"]["output"]
    assert server.get("/question").json() == []
    tool_messages = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages and "Red" in tool_messages[0]["content"]
    assert msgs[-1]["parts"][-2]["text"] == "Red it is"


def test_question_aborted_leaves_the_list_and_a_late_reply_is_404(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, request = _ask(server, llm)
    assert server.post(f"/session/{sid}/abort").json() is True
    assert server.get("/question").json() == []
    late = server.post(f"/question/{request['id']}/reply", json={"answers": [["Red"]]})
    assert late.status_code == 404
    assert late.json()["name"] == "NotFoundError"
    msgs = server.wait_idle(sid)
    part = _tool_parts(msgs)[0]
    assert part["state"]["status"] == "error" and part["state"]["error"] == "aborted"
    assert msgs[-1]["info"]["error"]["name"] == "MessageAbortedError"
    assert server.get("/session/status").json() == {}


def test_dismissed_question_ends_the_turn_and_the_model_hears_of_it_next_prompt(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, request = _ask(server, llm)
    assert server.post(f"/question/{request['id']}/reject").json() is True
    msgs = server.wait_idle(sid)
    part = _tool_parts(msgs)[0]
    assert part["state"]["status"] == "error"
    assert "dismissed" in part["state"]["error"]
    assert len(llm.requests) == 1, "the turn ends: no further model request (as OpenCode)"
    assert "error" not in msgs[-1]["info"]
    llm.enqueue(text_turn("understood"))
    server.prompt(sid, "never mind")
    tool_messages = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_messages[0]["content"].startswith("Error:")
    assert "dismissed" in tool_messages[0]["content"]


def test_deleting_the_session_cancels_its_pending_question(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, request = _ask(server, llm)
    assert server.request("DELETE", f"/session/{sid}").json() is True
    assert server.get("/question").json() == []
    assert (
        server.post(f"/question/{request['id']}/reply", json={"answers": [["Red"]]}).status_code
        == 404
    )


def test_todowrite_stores_the_list_and_emits_todo_updated(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    todos = [
        {"content": "write tests", "status": "in_progress", "priority": "high"},
        {"content": "ship", "status": "pending", "priority": "low"},
    ]
    llm.enqueue(tool_turn("todowrite", {"todos": todos}), text_turn("planned"))
    sid = server.create_session()["id"]
    server.prompt(sid, "plan it")
    assert server.get(f"/session/{sid}/todo").json() == todos
    replay = []
    for _, frame in server.events(last_event_id="0"):
        replay.append(frame)
        if frame["type"] == "session.idle":
            break
    updates = [f for f in replay if f["type"] == "todo.updated"]
    assert updates and updates[0]["properties"] == {"sessionID": sid, "todos": todos}


@pytest.fixture
def asking_project(project: Path, llm: ScriptedLLM) -> Path:
    """A project whose config asks before the ``skill`` tool runs, with one skill."""
    config = project_config(llm.base_url, permission={"skill": "ask"})
    (project / "opencode.json").write_text(json.dumps(config))
    skill = project / ".opencode" / "skill" / "greet"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: greet\ndescription: Greets\n---\nSay hello.\n")
    return project


@pytest.fixture
def asking_server(asking_project: Path, tmp_path: Path) -> Any:
    srv = RoostServer(asking_project, tmp_path / "ask.db").start()
    try:
        yield srv
    finally:
        srv.close()


def _ask_permission(server: RoostServer, llm: ScriptedLLM) -> tuple[str, dict[str, Any]]:
    llm.enqueue(tool_turn("skill", {"name": "greet"}))
    sid = server.create_session()["id"]
    assert (
        server.post(f"/session/{sid}/prompt_async", json=prompt_body("use the skill")).status_code
        == 204
    )
    pending = wait_for(lambda: server.get("/permission").json(), what="a pending permission")
    return sid, pending[0]


def test_permission_ask_then_reply_once(asking_server: RoostServer, llm: ScriptedLLM) -> None:
    sid, request = _ask_permission(asking_server, llm)
    assert request["permission"] == "skill" and request["patterns"] == ["greet"]
    assert request["tool"]["callID"]
    assert asking_server.get("/session/status").json()[sid]["reason"] == "permission"
    llm.enqueue(text_turn("greeted"))
    reply = asking_server.post(f"/permission/{request['id']}/reply", json={"reply": "once"})
    assert reply.json() is True
    msgs = asking_server.wait_idle(sid)
    part = _tool_parts(msgs)[0]
    assert part["state"]["status"] == "completed"
    assert "Say hello." in part["state"]["output"]
    assert asking_server.get("/permission").json() == []


def test_rejected_permission_ends_the_turn_and_the_model_is_told_next_prompt(
    asking_server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, request = _ask_permission(asking_server, llm)
    legacy = asking_server.post(
        f"/session/{sid}/permissions/{request['id']}", json={"response": "reject"}
    )
    assert legacy.json() is True
    msgs = asking_server.wait_idle(sid)
    part = _tool_parts(msgs)[0]
    assert part["state"]["status"] == "error"
    assert "rejected" in part["state"]["error"]
    assert len(llm.requests) == 1, "the turn ends: no further model request (as OpenCode)"
    llm.enqueue(text_turn("ok, I won't"))
    asking_server.prompt(sid, "do something else")
    told = next(m for m in llm.requests[-1]["messages"] if m["role"] == "tool")["content"]
    assert "rejected" in told


def test_continue_loop_on_deny_calls_the_model_again_after_a_rejection(
    asking_project: Path, llm: ScriptedLLM, tmp_path: Path
) -> None:
    project = asking_project
    config = project_config(
        llm.base_url,
        permission={"skill": "ask"},
        experimental={"continue_loop_on_deny": True},
    )
    (project / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(project, tmp_path / "continue.db").start()
    try:
        llm.enqueue(tool_turn("skill", {"name": "greet"}), text_turn("ok, I won't"))
        sid = srv.create_session()["id"]
        assert srv.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
        pending = wait_for(lambda: srv.get("/permission").json(), what="a pending permission")
        srv.post(f"/permission/{pending[0]['id']}/reply", json={"reply": "reject"})
        msgs = srv.wait_idle(sid)
        assert len(llm.requests) == 2
        assert msgs[-1]["parts"][-2]["text"] == "ok, I won't"
    finally:
        srv.close()


def test_always_approval_is_remembered_for_the_session(
    asking_server: RoostServer, llm: ScriptedLLM
) -> None:
    sid, request = _ask_permission(asking_server, llm)
    llm.enqueue(text_turn("done once"))
    asking_server.post(f"/permission/{request['id']}/reply", json={"reply": "always"})
    asking_server.wait_idle(sid)
    llm.enqueue(tool_turn("skill", {"name": "greet"}), text_turn("done twice"))
    msgs = asking_server.prompt(sid, "again")
    assert asking_server.get("/permission").json() == []
    assert _tool_parts(msgs)[-1]["state"]["status"] == "completed"
    session = asking_server.get(f"/session/{sid}").json()
    assert {"permission": "skill", "pattern": "greet", "action": "allow"} in session["permission"]


def test_agents_are_not_offered_tools_their_rules_deny(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    server.prompt(sid, "look around", agent="explore")
    offered = {t["function"]["name"] for t in llm.requests[-1].get("tools", [])}
    assert "todowrite" not in offered and "task" not in offered
    assert "question" in offered
    server.prompt(sid, "now build", agent="build")
    offered = {t["function"]["name"] for t in llm.requests[-1].get("tools", [])}
    assert {"todowrite", "task", "question"} <= offered
