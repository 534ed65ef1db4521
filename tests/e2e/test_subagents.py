"""The ``task`` tool: child sessions that complete, fail, or are aborted with their parent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.scripted_llm import Fail, Hang, ScriptedLLM, Turn, text_turn, tool_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

TASK = {"description": "Child task", "prompt": "do the child thing", "subagent_type": "general"}


def _task_part(msgs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(p for m in msgs for p in m["parts"] if p["type"] == "tool")


def test_task_runs_a_child_session_and_returns_its_final_text(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(tool_turn("task", TASK), text_turn("child result"), text_turn("parent done"))
    sid = server.create_session()["id"]
    msgs = server.prompt(sid, "delegate")
    part = _task_part(msgs)
    assert part["state"]["status"] == "completed"
    output = part["state"]["output"]
    child_id = part["state"]["metadata"]["sessionId"]
    assert output.startswith(f'<task id="{child_id}" state="completed">')
    assert "child result" in output
    children = server.get(f"/session/{sid}/children").json()
    assert [c["id"] for c in children] == [child_id]
    assert children[0]["parentID"] == sid
    assert children[0]["title"] == "Child task (@general subagent)"
    listed = {s["id"] for s in server.get("/session").json()}
    assert child_id in listed
    child_msgs = server.messages(child_id)
    assert child_msgs[0]["parts"][0]["text"] == "do the child thing"
    assert llm.requests[1]["messages"][-1]["content"] == "do the child thing"
    assert msgs[-1]["parts"][-2]["text"] == "parent done"


def test_a_failing_child_becomes_the_task_parts_error(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(
        tool_turn("task", TASK),
        Turn([Fail(400, "child model broke")]),
        text_turn("parent saw the failure"),
    )
    sid = server.create_session()["id"]
    msgs = server.prompt(sid, "delegate")
    part = _task_part(msgs)
    assert part["state"]["status"] == "error"
    assert "child model broke" in part["state"]["error"]
    assert "error" not in msgs[-1]["info"]


def test_unknown_subagent_is_an_error_the_model_sees(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(tool_turn("task", {**TASK, "subagent_type": "wizard"}), text_turn("ok"))
    sid = server.create_session()["id"]
    part = _task_part(server.prompt(sid, "delegate"))
    assert part["state"]["status"] == "error"
    assert "wizard" in part["state"]["error"] and "general" in part["state"]["error"]


def test_aborting_the_parent_aborts_the_running_child(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(tool_turn("task", TASK), Turn([Hang()]))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    children = wait_for(lambda: server.get(f"/session/{sid}/children").json(), what="a child")
    child_id = children[0]["id"]
    wait_for(lambda: child_id in server.get("/session/status").json(), what="child busy")
    assert server.post(f"/session/{sid}/abort").json() is True
    msgs = server.wait_idle(sid)
    assert msgs[-1]["info"]["error"]["name"] == "MessageAbortedError"
    child = server.wait_idle(child_id)
    assert child[-1]["info"]["error"]["name"] == "MessageAbortedError"
    assert server.get("/session/status").json() == {}


def test_task_id_continues_an_earlier_child(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(tool_turn("task", TASK), text_turn("first child answer"), text_turn("p1"))
    sid = server.create_session()["id"]
    child_id = _task_part(server.prompt(sid, "one"))["state"]["metadata"]["sessionId"]
    llm.enqueue(
        tool_turn("task", {**TASK, "task_id": child_id, "prompt": "more"}),
        text_turn("second child answer"),
        text_turn("p2"),
    )
    part = [p for m in server.prompt(sid, "two") for p in m["parts"] if p["type"] == "tool"][-1]
    assert part["state"]["metadata"]["sessionId"] == child_id
    assert "second child answer" in part["state"]["output"]
    assert len(server.get(f"/session/{sid}/children").json()) == 1
    assert [m["info"]["role"] for m in server.messages(child_id)] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]
