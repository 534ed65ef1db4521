"""Compaction end to end: ``POST /session/{id}/summarize``, automatic compaction when the
context window fills or the provider refuses a request as too long, pruning, abort, and the
guard against compacting in a loop. What the model saw is read from the scripted LLM's log."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from roost.agent.compaction import CONTINUE_NOTE, RECAP_QUESTION
from roost.agent.prune import CLEARED
from tests.support.events import EventCollector, types_of, until_idle
from tests.support.openapi import validate, validate_event
from tests.support.scripted_llm import (
    Delay,
    Fail,
    ScriptedLLM,
    Step,
    Text,
    ToolCall,
    Turn,
    text_turn,
)
from tests.support.server import MODEL_ID, PROVIDER_ID, RoostServer, project_config
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

SUMMARIZE_BODY = {"providerID": PROVIDER_ID, "modelID": MODEL_ID}
TOO_LONG = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "9000 tokens. Please reduce the length of the messages."
)
SMALL_LIMIT = {"context": 2000, "output": 500}
"""A window of 1500 usable tokens: 2000 less the 500 reserved for the answer."""


# -- helpers --------------------------------------------------------------------------------


def _serve(tmp_path: Path, llm: ScriptedLLM, **config: Any) -> Iterator[RoostServer]:
    directory = tmp_path / "small-project"
    directory.mkdir()
    (directory / "opencode.json").write_text(json.dumps(_config(llm, **config)))
    srv = RoostServer(directory, tmp_path / "small.db").start()
    try:
        yield srv
    finally:
        srv.close()


def _config(llm: ScriptedLLM, *, limit: dict[str, int] | None = None, **extra: Any) -> Any:
    config = project_config(llm.base_url, **extra)
    if limit is not None:
        config["provider"][PROVIDER_ID]["models"][MODEL_ID] = {"limit": limit}
    return config


@pytest.fixture
def small_server(tmp_path: Path, llm: ScriptedLLM) -> Iterator[RoostServer]:
    """A server whose scripted model has a 2000-token context and a 500-token answer limit."""
    yield from _serve(tmp_path, llm, limit=SMALL_LIMIT)


@pytest.fixture
def claude_server(tmp_path: Path, llm: ScriptedLLM) -> Iterator[RoostServer]:
    """A server whose only provider is an Anthropic one on the scripted LLM."""
    config = {
        "model": "claude/claude-test",
        "provider": {
            "claude": {
                "npm": "@ai-sdk/anthropic",
                "options": {"baseURL": llm.base_url, "apiKey": "k"},
                "models": {"claude-test": {}},
            }
        },
    }
    directory = tmp_path / "claude-project"
    directory.mkdir()
    (directory / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(directory, tmp_path / "claude.db").start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def pruning_server(tmp_path: Path, llm: ScriptedLLM) -> Iterator[RoostServer]:
    """A server with ``compaction.prune: true``."""
    yield from _serve(tmp_path, llm, compaction={"prune": True})


def _summarize(server: RoostServer, sid: str, **extra: Any) -> httpx.Response:
    return server.post(f"/session/{sid}/summarize", json={**SUMMARIZE_BODY, **extra})


def _chat(request: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(role, content)`` of each message an LLM request sent, the system prompt left out."""
    return [(m["role"], m.get("content")) for m in request["messages"] if m["role"] != "system"]


def _texts(message: dict[str, Any]) -> list[str]:
    return [p["text"] for p in message["parts"] if p["type"] == "text"]


def _compaction(message: dict[str, Any]) -> dict[str, Any] | None:
    return next((p for p in message["parts"] if p["type"] == "compaction"), None)


def _summaries(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["info"].get("summary") is True]


def _is_summary_request(request: dict[str, Any]) -> bool:
    return "<transcript>" in str(request["messages"][-1].get("content"))


def _valid(message: dict[str, Any]) -> dict[str, Any]:
    info = message["info"]
    validate(info, "UserMessage" if info["role"] == "user" else "AssistantMessage")
    for part in message["parts"]:
        validate(part, "Part")
    return message


def _idle(server: RoostServer, sid: str) -> bool:
    return sid not in server.get("/session/status").json()


def _bash(tag: str) -> ToolCall:
    return ToolCall("bash", {"command": f"echo {tag}", "description": f"echo {tag}"})


# -- POST /session/{id}/summarize ------------------------------------------------------------


def test_summarize_answers_true_and_stores_a_compaction_request_and_a_summary(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    llm.enqueue(text_turn("answer one"))
    server.prompt(sid, "one")
    llm.enqueue(text_turn("SUMMARY of one"))
    with EventCollector(server.url) as events:
        response = _summarize(server, sid)
        frames = events.wait_until(until_idle(sid), what="the compaction's end")
    assert response.status_code == 200, response.text
    assert response.json() is True

    request, summary = (_valid(m) for m in server.messages(sid)[-2:])
    assert request["info"]["role"] == "user"
    assert request["info"]["model"] == SUMMARIZE_BODY
    assert _compaction(request) == {
        "id": request["parts"][0]["id"],
        "sessionID": sid,
        "messageID": request["info"]["id"],
        "type": "compaction",
        "auto": False,
    }
    info = summary["info"]
    assert info["summary"] is True
    assert (info["mode"], info["agent"], info["finish"]) == ("compaction", "compaction", "stop")
    assert info["parentID"] == request["info"]["id"]
    assert "completed" in info["time"] and "error" not in info
    assert _texts(summary) == ["SUMMARY of one"]

    summary_request = llm.requests[-1]
    assert "tools" not in summary_request
    assert "[user]\none" in summary_request["messages"][-1]["content"]
    assert "[assistant]\nanswer one" in summary_request["messages"][-1]["content"]

    types = types_of(frames)
    compacted = types.index("session.compacted")
    assert types[compacted:] == ["session.compacted", "session.status", "session.idle"]
    completed = [
        i
        for i, (_, f) in enumerate(frames)
        if f["type"] == "message.updated"
        and f["properties"]["info"]["id"] == info["id"]
        and "completed" in f["properties"]["info"]["time"]
    ]
    assert completed and completed[0] < compacted
    validate_event(frames[compacted][1], "EventSessionCompacted")


def test_summarize_refuses_unknown_sessions_and_bodies_without_a_model(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    missing = _summarize(server, "ses_doesnotexist000000000000")
    assert missing.status_code == 404
    validate(missing.json(), "NotFoundError")
    sid = server.create_session()["id"]
    no_model = server.post(f"/session/{sid}/summarize", json={"providerID": PROVIDER_ID})
    assert no_model.status_code == 400
    validate(no_model.json(), "BadRequestError")
    unknown = _summarize(server, sid, modelID="no-such-model")
    assert unknown.status_code == 400
    validate(unknown.json(), "BadRequestError")
    assert server.messages(sid) == []
    assert llm.requests == []


def test_the_next_request_sees_the_summary_and_only_the_messages_after_it(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    llm.enqueue(text_turn("answer one"), text_turn("answer two"), text_turn("SUMMARY"))
    server.prompt(sid, "one")
    server.prompt(sid, "two")
    assert _summarize(server, sid).json() is True
    llm.enqueue(text_turn("answer three"))
    server.prompt(sid, "three")

    assert _chat(llm.requests[-1]) == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY"),
        ("user", "three"),
    ]
    # The store keeps everything.
    texts = [t for m in server.messages(sid) for t in _texts(m)]
    assert texts == ["one", "answer one", "two", "answer two", "SUMMARY", "three", "answer three"]


def test_summarize_is_single_flight(server: RoostServer, llm: ScriptedLLM) -> None:
    sid = server.create_session()["id"]
    llm.enqueue(text_turn("answer one"))
    server.prompt(sid, "one")
    # The summary streams for 3 s: the second request arrives while the first compaction runs.
    llm.enqueue(Turn([Text("SUMMARY"), Delay(3.0)]), text_turn("a second summary"))
    answers: list[httpx.Response] = []
    first = threading.Thread(target=lambda: answers.append(_summarize(server, sid)))
    first.start()
    llm.wait_for_requests(2)  # the compaction's summary request is streaming
    answers.append(_summarize(server, sid))
    first.join(timeout=30)

    assert [a.json() for a in answers] == [True, True]
    messages = server.messages(sid)
    assert len([m for m in messages if _compaction(m)]) == 1
    assert [_texts(m) for m in _summaries(messages)] == [["SUMMARY"]]
    assert len(llm.requests) == 2


def test_abort_during_compaction_stops_it_and_the_model_still_sees_everything(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    llm.enqueue(text_turn("answer one"), Turn([Text("half a sum"), Delay(30)]))
    server.prompt(sid, "one")
    answers: list[httpx.Response] = []
    with EventCollector(server.url) as events:
        waiting = threading.Thread(target=lambda: answers.append(_summarize(server, sid)))
        waiting.start()
        llm.wait_for_requests(2)
        wait_for(
            lambda: any(_texts(m) == ["half a sum"] for m in _summaries(server.messages(sid))),
            what="the summary streaming",
        )
        assert server.post(f"/session/{sid}/abort").json() is True
        waiting.join(timeout=30)
        frames = events.wait_until(until_idle(sid), what="the aborted compaction's end")

    [answer] = answers
    assert answer.status_code == 500
    assert "Aborted" in answer.json()["data"]["message"]
    [summary] = _summaries(server.messages(sid))
    assert summary["info"]["error"]["name"] == "MessageAbortedError"
    assert "completed" in summary["info"]["time"]
    assert "session.compacted" not in types_of(frames)
    assert _idle(server, sid)

    llm.enqueue(text_turn("answer two"))
    server.prompt(sid, "two")
    assert _chat(llm.requests[-1]) == [
        ("user", "one"),
        ("assistant", "answer one"),
        ("user", "two"),
    ]


# -- automatic compaction ----------------------------------------------------------------------


def test_a_prompt_after_a_request_that_filled_the_window_is_answered_after_a_compaction(
    small_server: RoostServer, llm: ScriptedLLM
) -> None:
    server = small_server
    sid = server.create_session()["id"]
    llm.enqueue(Turn([Text("answer one")], usage=(1480, 20)))  # 1500 tokens: the window is full
    server.prompt(sid, "one")
    llm.enqueue(text_turn("SUMMARY of one"), text_turn("answer two"))
    messages = server.prompt(sid, "two")

    summary_request, answer_request = llm.requests[-2:]
    assert _is_summary_request(summary_request)
    assert "[assistant]\nanswer one" in summary_request["messages"][-1]["content"]
    assert "[user]\ntwo" not in summary_request["messages"][-1]["content"]  # kept whole
    assert _chat(answer_request) == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY of one"),
        ("user", "two"),
    ]
    prompt, request, summary, answer = (_valid(m) for m in messages[2:])
    assert _texts(prompt) == ["two"]
    assert _compaction(request) == {
        "id": request["parts"][0]["id"],
        "sessionID": sid,
        "messageID": request["info"]["id"],
        "type": "compaction",
        "auto": True,
        "tail_start_id": prompt["info"]["id"],
    }
    assert summary["info"]["summary"] is True and _texts(summary) == ["SUMMARY of one"]
    assert _texts(answer) == ["answer two"] and "error" not in answer["info"]
    assert {summary["info"]["parentID"], answer["info"]["parentID"]} == {prompt["info"]["id"]}
    assert _texts(messages[1]) == ["answer one"]  # nothing was deleted


def test_a_step_that_fills_the_window_is_followed_by_a_compaction_and_the_turn_goes_on(
    small_server: RoostServer, llm: ScriptedLLM
) -> None:
    server = small_server
    sid = server.create_session()["id"]
    llm.enqueue(
        Turn([_bash("first")], usage=(1600, 10)),
        text_turn("SUMMARY so far"),
        text_turn("done"),
    )
    messages = server.prompt(sid, "work")

    _, summary_request, continued = llm.requests
    assert _is_summary_request(summary_request)
    assert "[tool call] bash" in summary_request["messages"][-1]["content"]
    assert _chat(continued) == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY so far"),
        ("user", CONTINUE_NOTE),
    ]
    prompt, tool_step, request, summary, answer = (_valid(m) for m in messages)
    assert any(p["type"] == "tool" for p in tool_step["parts"])
    marker = _compaction(request)
    assert marker is not None and marker["auto"] is True
    assert "tail_start_id" not in marker
    assert _texts(summary) == ["SUMMARY so far"]
    assert _texts(answer) == ["done"]
    assert {m["info"]["parentID"] for m in (tool_step, summary, answer)} == {prompt["info"]["id"]}
    assert _idle(server, sid)


def test_a_refusal_for_length_compacts_and_sends_the_request_again(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    llm.enqueue(text_turn("answer one"))
    server.prompt(sid, "one")
    llm.enqueue(Turn([Fail(400, TOO_LONG)]), text_turn("SUMMARY"), text_turn("answer two"))
    messages = server.prompt(sid, "two")

    refused, summary_request, retried = llm.requests[-3:]
    assert _chat(refused) == [("user", "one"), ("assistant", "answer one"), ("user", "two")]
    assert _is_summary_request(summary_request)
    assert _chat(retried) == [("user", RECAP_QUESTION), ("assistant", "SUMMARY"), ("user", "two")]

    prompt, refused_reply, request, summary, answer = (_valid(m) for m in messages[2:])
    assert refused_reply["info"]["error"]["name"] == "ContextOverflowError"
    assert TOO_LONG in refused_reply["info"]["error"]["data"]["message"]
    assert _compaction(request) == {
        "id": request["parts"][0]["id"],
        "sessionID": sid,
        "messageID": request["info"]["id"],
        "type": "compaction",
        "auto": True,
        "overflow": True,
        "tail_start_id": prompt["info"]["id"],
    }
    assert _texts(summary) == ["SUMMARY"]
    assert _texts(answer) == ["answer two"] and "error" not in answer["info"]


def test_anthropics_prompt_is_too_long_is_compacted_and_sent_again(
    claude_server: RoostServer, llm: ScriptedLLM
) -> None:
    server = claude_server
    sid = server.create_session()["id"]
    llm.enqueue(text_turn("answer one"))
    server.prompt(sid, "one")
    too_long = "prompt is too long: 210000 tokens > 200000 maximum"
    llm.enqueue(Turn([Fail(400, too_long)]), text_turn("SUMMARY"), text_turn("answer two"))
    messages = server.prompt(sid, "two")

    def sent(request: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            (m["role"], "".join(block["text"] for block in m["content"]))
            for m in request["messages"]
        ]

    assert sent(llm.requests[-1]) == [
        ("user", RECAP_QUESTION),
        ("assistant", "SUMMARY"),
        ("user", "two"),
    ]
    assert messages[3]["info"]["error"]["name"] == "ContextOverflowError"
    assert (_compaction(messages[4]) or {}).get("overflow") is True
    assert _texts(messages[-1]) == ["answer two"]


def test_a_request_refused_again_after_compaction_fails_visibly(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    llm.enqueue(text_turn("answer one"))
    server.prompt(sid, "one")
    llm.enqueue(
        Turn([Fail(400, TOO_LONG)]),
        text_turn("SUMMARY"),
        Turn([Fail(400, TOO_LONG)]),
        text_turn("a second summary: must not be asked for"),
    )
    with EventCollector(server.url) as events:
        messages = server.prompt(sid, "two")
        frames = events.wait_until(until_idle(sid), what="the failed turn's end")

    assert len(llm.requests) == 4  # one, then: refused, summary, refused again; nothing more
    assert len(_summaries(messages)) == 1
    last = messages[-1]["info"]
    assert last["error"]["name"] == "ContextOverflowError"
    assert "after compaction" in last["error"]["data"]["message"]
    assert "session.error" in types_of(frames)
    assert _idle(server, sid)


def test_a_compaction_that_still_fills_the_window_fails_instead_of_compacting_again(
    small_server: RoostServer, llm: ScriptedLLM
) -> None:
    # OpenCode 1.18.34 compacts again here, and again, for as long as the model answers.
    server = small_server
    sid = server.create_session()["id"]
    llm.enqueue(
        Turn([_bash("one")], usage=(1600, 10)),
        text_turn("SUMMARY"),
        Turn([_bash("two")], usage=(1600, 10)),  # after the compaction: still full
        text_turn("a second summary: must not be asked for"),
        text_turn("must not be asked for either"),
    )
    with EventCollector(server.url) as events:
        messages = server.prompt(sid, "work")
        frames = events.wait_until(until_idle(sid), what="the failed turn's end")

    assert len(llm.requests) == 3
    assert len([m for m in messages if _compaction(m)]) == 1
    last = _valid(messages[-1])["info"]
    assert last["error"]["name"] == "ContextOverflowError"
    assert "compacted already" in last["error"]["data"]["message"]
    assert "session.error" in types_of(frames)
    assert _idle(server, sid)


# -- pruning -----------------------------------------------------------------------------------


def test_old_tool_outputs_are_cleared_from_requests_but_kept_in_the_store(
    pruning_server: RoostServer, llm: ScriptedLLM
) -> None:
    server = pruning_server
    sid = server.create_session()["id"]
    big: list[Step] = [  # 6 outputs of ~45000 characters: ~11250 estimated tokens each
        ToolCall("bash", {"command": f"printf out{i}-; head -c 45000 /dev/zero | tr '\\0' x"})
        for i in range(1, 7)
    ]
    llm.enqueue(Turn(big), text_turn("read them"), text_turn("two done"), text_turn("three done"))
    server.prompt(sid, "one")
    server.prompt(sid, "two")
    server.prompt(sid, "three")

    outputs = [m["content"] for m in llm.requests[-1]["messages"] if m["role"] == "tool"]
    assert outputs[:3] == [CLEARED] * 3
    assert [o[:5] for o in outputs[3:]] == ["out4-", "out5-", "out6-"]
    # The turn that made the calls saw them all; the store keeps them all.
    assert not any(m.get("content") == CLEARED for r in llm.requests[:-1] for m in r["messages"])
    stored = [
        p["state"]["output"]
        for m in server.messages(sid)
        for p in m["parts"]
        if p["type"] == "tool"
    ]
    assert [o[:5] for o in stored] == [f"out{i}-" for i in range(1, 7)]
    assert all(len(o) > 45_000 for o in stored)
