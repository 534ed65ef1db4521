"""SIGKILL a real server in the middle of a compaction and restart it on the same port and
database: the compaction is finished (or failed) visibly, and the session goes idle."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roost.agent.compaction import CONTINUE_NOTE, RECAP_QUESTION
from tests.support.scripted_llm import Delay, ScriptedLLM, Text, ToolCall, Turn, text_turn
from tests.support.server import MODEL_ID, PROVIDER_ID, RoostServer, project_config
from tests.support.waiting import wait_for

pytestmark = pytest.mark.crash


@pytest.fixture
def small_server(tmp_path: Path, llm: ScriptedLLM) -> Iterator[RoostServer]:
    """A server whose scripted model has a 2000-token context and a 500-token answer limit."""
    config = project_config(llm.base_url)
    config["provider"][PROVIDER_ID]["models"][MODEL_ID] = {
        "limit": {"context": 2000, "output": 500}
    }
    directory = tmp_path / "small-project"
    directory.mkdir()
    (directory / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(directory, tmp_path / "small.db").start()
    try:
        yield srv
    finally:
        srv.close()


def _texts(message: dict[str, Any]) -> list[str]:
    return [p["text"] for p in message["parts"] if p["type"] == "text"]


def _summaries(server: RoostServer, sid: str) -> list[dict[str, Any]]:
    return [m for m in server.messages(sid) if m["info"].get("summary") is True]


def _settled_summaries(server: RoostServer, sid: str, count: int) -> list[dict[str, Any]] | None:
    found = _summaries(server, sid)
    if len(found) < count or sid in server.get("/session/status").json():
        return None
    return found if all("completed" in m["info"]["time"] for m in found) else None


def _summarize_in_background(
    server: RoostServer, sid: str, outcome: list[httpx.Response | httpx.HTTPError]
) -> threading.Thread:
    def call() -> None:
        try:
            outcome.append(
                httpx.post(
                    f"{server.url}/session/{sid}/summarize",
                    json={"providerID": PROVIDER_ID, "modelID": MODEL_ID},
                    timeout=60,
                )
            )
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def test_a_compaction_cut_by_sigkill_is_finished_after_restart_and_the_session_idles(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    llm.enqueue(text_turn("answer one"), Turn([Text("half a summary"), Delay(30)]))
    server.prompt(sid, "one")
    outcome: list[httpx.Response | httpx.HTTPError] = []
    waiting = _summarize_in_background(server, sid, outcome)
    llm.wait_for_requests(2)
    wait_for(
        lambda: any(_texts(m) == ["half a summary"] for m in _summaries(server, sid)),
        what="the summary streaming",
    )
    server.kill()
    waiting.join(timeout=10)
    [cut_call] = outcome
    assert isinstance(cut_call, httpx.TransportError)  # the server died under the call
    llm.enqueue(text_turn("SUMMARY after the restart"))
    server.start()

    cut, finished = wait_for(
        lambda: _settled_summaries(server, sid, 2), what="the compaction recovered"
    )
    assert cut["info"]["error"]["data"]["message"] == "interrupted: server restarted"
    assert _texts(cut) == ["half a summary"]
    assert "error" not in finished["info"] and finished["info"]["finish"] == "stop"
    assert _texts(finished) == ["SUMMARY after the restart"]
    assert finished["info"]["parentID"] == cut["info"]["parentID"]
    assert server.get("/session/status").json() == {}

    llm.enqueue(text_turn("answer two"))
    server.prompt(sid, "two")
    sent = [(m["role"], m["content"]) for m in llm.requests[-1]["messages"][1:]]
    assert sent == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY after the restart"),
        ("user", "two"),
    ]


def test_an_automatic_compaction_cut_by_sigkill_is_redone_and_the_turn_finishes(
    small_server: RoostServer, llm: ScriptedLLM
) -> None:
    server = small_server
    sid = server.create_session()["id"]
    step = ToolCall("bash", {"command": "echo hi", "description": "echo"})
    llm.enqueue(Turn([step], usage=(1600, 10)), Turn([Text("half a summary"), Delay(30)]))
    response = server.post(
        f"/session/{sid}/prompt_async", json={"parts": [{"type": "text", "text": "work"}]}
    )
    assert response.status_code == 204
    llm.wait_for_requests(2)
    wait_for(
        lambda: any(_texts(m) == ["half a summary"] for m in _summaries(server, sid)),
        what="the automatic summary streaming",
    )
    server.kill()
    llm.enqueue(text_turn("SUMMARY after the restart"), text_turn("done"))
    server.start()

    messages = wait_for(lambda: _turn_done(server, sid), what="the turn resumed and finished")
    cut, finished = _summaries(server, sid)
    assert cut["info"]["error"]["data"]["message"] == "interrupted: server restarted"
    assert _texts(finished) == ["SUMMARY after the restart"] and "error" not in finished["info"]
    assert _texts(messages[-1]) == ["done"] and "error" not in messages[-1]["info"]
    sent = [(m["role"], m["content"]) for m in llm.requests[-1]["messages"][1:]]
    assert sent == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY after the restart"),
        ("user", CONTINUE_NOTE),
    ]


def _turn_done(server: RoostServer, sid: str) -> list[dict[str, Any]] | None:
    messages = server.messages(sid)
    last = messages[-1]["info"]
    if sid in server.get("/session/status").json() or last["role"] != "assistant":
        return None
    return messages if "completed" in last["time"] and _texts(messages[-1]) == ["done"] else None
