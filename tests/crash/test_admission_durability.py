"""SIGKILL right after a 2xx: what was admitted is on disk, and nothing stays busy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.scripted_llm import Delay, ScriptedLLM, Text, Turn, text_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.crash


def test_prompt_async_is_durable_before_204(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(Turn([Delay(5), Text("too late")]))
    session = server.create_session()
    response = server.post(
        f"/session/{session['id']}/prompt_async", json=prompt_body("remember me")
    )
    assert response.status_code == 204
    server.kill()  # SIGKILL right after the 204: the prompt must already be on disk
    server.start()
    msgs = server.messages(session["id"])
    assert msgs[0]["info"]["role"] == "user"
    assert msgs[0]["parts"][0]["text"] == "remember me"


def test_a_turn_cut_by_sigkill_ends_in_a_visible_error_after_restart(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Text("partial "), Delay(30)]))
    session = server.create_session()
    assert (
        server.post(f"/session/{session['id']}/prompt_async", json=prompt_body("go")).status_code
        == 204
    )
    llm.wait_for_requests(1)
    server.kill()
    server.start()
    msgs = server.wait_idle(session["id"])
    assistant = msgs[-1]["info"]
    assert assistant["role"] == "assistant"
    assert "interrupted" in assistant["error"]["data"]["message"]
    assert "completed" in assistant["time"]
    assert server.get("/session/status").json() == {}


def test_prompts_queued_behind_a_killed_turn_still_run_after_restart(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Delay(30)]))
    sid = server.create_session()["id"]
    first = server.post(f"/session/{sid}/prompt_async", json=prompt_body("first"))
    assert first.status_code == 204
    llm.wait_for_requests(1)
    second = server.post(f"/session/{sid}/prompt_async", json=prompt_body("second"))
    assert second.status_code == 204
    server.kill()
    llm.enqueue(text_turn("answer to second"))
    server.start()

    def answered() -> list[dict[str, Any]] | None:
        replies = [m for m in server.messages(sid) if m["info"]["role"] == "assistant"]
        done = len(replies) == 2 and "completed" in replies[1]["info"]["time"]
        return replies if done else None

    replies = wait_for(answered, what="the queued prompt answered")
    assert "error" in replies[0]["info"]
    assert [p["text"] for p in replies[1]["parts"] if p["type"] == "text"] == ["answer to second"]
    assert server.get("/session/status").json() == {}
