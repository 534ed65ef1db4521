"""SIGKILL a real server, restart it on the same database: nothing admitted is lost, every
orphaned run is recovered, and nothing stays busy."""

from __future__ import annotations

import signal
import threading
from typing import Any

import httpx
import psutil
import pytest

from tests.support.events import EventCollector, session_frames, types_of
from tests.support.scripted_llm import Delay, ScriptedLLM, Text, Turn, text_turn, tool_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for, written

pytestmark = pytest.mark.crash


def _replies(server: RoostServer, sid: str) -> list[dict[str, Any]]:
    return [m for m in server.messages(sid) if m["info"]["role"] == "assistant"]


def _settled(server: RoostServer, sid: str, count: int) -> list[dict[str, Any]] | None:
    replies = _replies(server, sid)
    if len(replies) < count or sid in server.get("/session/status").json():
        return None
    return replies if all("completed" in r["info"]["time"] for r in replies) else None


def _start_stalled_turn(server: RoostServer, llm: ScriptedLLM) -> str:
    """A new session whose turn has streamed "partial " and then stalls for 30 s."""
    llm.enqueue(Turn([Text("partial "), Delay(30)]))
    sid: str = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    llm.wait_for_requests(1)
    return sid


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


def test_a_turn_cut_by_sigkill_is_marked_interrupted_and_resumed(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = _start_stalled_turn(server, llm)
    server.kill()
    llm.enqueue(text_turn("resumed answer"))
    server.start()
    replies = wait_for(lambda: _settled(server, sid, 2), what="recovery and resumption")
    interrupted, resumed = replies
    assert interrupted["info"]["error"]["data"]["message"] == "interrupted: server restarted"
    assert "completed" in interrupted["info"]["time"]
    assert [p["text"] for p in resumed["parts"] if p["type"] == "text"] == ["resumed answer"]
    assert resumed["info"]["parentID"] == interrupted["info"]["parentID"]
    assert server.get("/session/status").json() == {}


def test_sigterm_during_a_turn_stores_it_interrupted_and_exits(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = _start_stalled_turn(server, llm)
    wait_for(
        lambda: any(p.get("text") for r in _replies(server, sid) for p in r["parts"]),
        what="the first text delta stored",
    )
    # The provider stream stays stalled for 30 s: a graceful stop must not wait for it.
    assert server.terminate(timeout_s=10) in (0, -signal.SIGTERM)
    server.start()
    [reply] = _replies(server, sid)
    assert reply["info"]["error"]["data"]["message"] == "interrupted: server stopped"
    assert "completed" in reply["info"]["time"]
    assert [p["text"] for p in reply["parts"] if p["type"] == "text"] == ["partial "]
    assert server.get("/session/status").json() == {}


def test_sigterm_answers_a_waiting_synchronous_prompt_and_delivers_the_final_events(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Text("partial "), Delay(30)]))
    sid = server.create_session()["id"]
    answers: list[httpx.Response] = []
    with EventCollector(server.url) as events:
        waiting = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{server.url}/session/{sid}/message", json=prompt_body("go"), timeout=30
                )
            )
        )
        waiting.start()
        llm.wait_for_requests(1)
        wait_for(
            lambda: any(p.get("text") for r in _replies(server, sid) for p in r["parts"]),
            what="the first text delta stored",
        )
        assert server.terminate(timeout_s=10) in (0, -signal.SIGTERM)
        waiting.join(timeout=10)
        frames = events.wait_until(lambda f: f if events.ended else None, what="the stream's end")

    [answer] = answers
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["info"]["error"]["data"]["message"] == "interrupted: server stopped"
    mine = types_of(session_frames(frames, sid))
    assert mine[-2:] == ["session.status", "session.idle"], mine
    assert "session.error" in mine


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
    llm.enqueue(text_turn("answer to first"), text_turn("answer to second"))
    server.start()
    replies = wait_for(lambda: _settled(server, sid, 3), what="both prompts answered")
    texts = [[p["text"] for p in r["parts"] if p["type"] == "text"] for r in replies]
    assert "error" in replies[0]["info"]
    assert texts[1:] == [["answer to first"], ["answer to second"]]
    assert llm.requests[-1]["messages"][-1]["content"] == "second"


def test_kill_during_bash_sleep_leaves_no_process_and_a_usable_session(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    pid_file = server.directory / "sleep.pid"  # inside the project: no external_directory ask
    llm.enqueue(tool_turn("bash", {"command": f"sleep 60 & echo $! > {pid_file}; wait"}))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("sleep")).status_code == 204
    sleeper = int(wait_for(lambda: written(pid_file), what="the sleep started"))
    server.kill()
    assert psutil.pid_exists(sleeper)  # SIGKILL of the server does not reach the tool
    llm.enqueue(text_turn("after the crash"))
    server.start()
    replies = wait_for(lambda: _settled(server, sid, 2), what="recovered")

    def gone() -> bool:
        try:
            return psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, timeout_s=5, what="the orphaned sleep killed")
    tool = next(p for p in replies[0]["parts"] if p["type"] == "tool")
    assert tool["state"]["status"] == "error"
    assert tool["state"]["error"] == "interrupted: server restarted"
    tool_results = [m for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_results and tool_results[0]["content"].startswith("Error:")
    llm.enqueue(text_turn("still usable"))
    msgs = server.prompt(sid, "are you there?")
    assert [p["text"] for p in msgs[-1]["parts"] if p["type"] == "text"] == ["still usable"]


def test_a_run_recovered_too_often_ends_in_a_visible_error(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    llm.enqueue(Turn([Delay(30)]))
    assert (
        server.post(f"/session/{sid}/prompt_async", json=prompt_body("crashy")).status_code == 204
    )
    for crashes in range(1, 5):
        llm.wait_for_requests(crashes)
        server.kill()
        llm.enqueue(Turn([Delay(30)]))
        server.start()
        if crashes == 4:
            break
    replies = wait_for(lambda: _settled(server, sid, 4), what="the run given up")
    errors = [r["info"]["error"]["data"]["message"] for r in replies]
    assert all(e == "interrupted: server restarted" for e in errors)
    assert len(llm.requests) == 4  # 1 original + 3 resumptions, none after the 4th crash
    assert server.get("/session/status").json() == {}
