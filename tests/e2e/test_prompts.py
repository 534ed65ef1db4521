"""Prompts end to end: admission, ids, queueing, the stored turn, provider failures, abort."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from roost.ids import new_message_id, new_part_id
from tests.support.events import EventCollector, types_of, until_idle
from tests.support.histories import fill_long_session
from tests.support.scripted_llm import (
    MODEL_ID,
    Delay,
    Drop,
    Fail,
    Hang,
    Reasoning,
    ScriptedLLM,
    Text,
    Turn,
    text_turn,
)
from tests.support.server import PROVIDER_ID, RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

MESSAGE_ID = re.compile(r"^msg_[0-9a-f]{12}[0-9A-Za-z]{14}$")
PART_ID = re.compile(r"^prt_[0-9a-f]{12}[0-9A-Za-z]{14}$")


# -- helpers --------------------------------------------------------------------------------


def _send(server: RoostServer, sid: str, body: dict[str, Any]) -> None:
    response = server.post(f"/session/{sid}/prompt_async", json=body)
    assert response.status_code == 204, response.text
    assert response.content == b""


def _texts(message: dict[str, Any]) -> list[str]:
    return [p["text"] for p in message["parts"] if p["type"] == "text"]


def _part_frames(n: int) -> Any:
    """A probe for ``wait_until``: the ``message.part.updated`` frames once there are ``n``."""

    def probe(frames: list[Any]) -> list[dict[str, Any]] | None:
        found = [f for _, f in frames if f["type"] == "message.part.updated"]
        return found if len(found) >= n else None

    return probe


def _role(messages: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["info"]["role"] == role]


def _user_contents(request: dict[str, Any]) -> list[str]:
    """The text of every user message an LLM request carried, in order."""
    out = []
    for m in request["messages"]:
        if m["role"] != "user":
            continue
        content = m["content"]
        if isinstance(content, list):
            content = "".join(c.get("text", "") for c in content)
        out.append(content)
    return out


def _completed_replies(server: RoostServer, sid: str, n: int) -> list[dict[str, Any]] | None:
    replies = _role(server.messages(sid), "assistant")
    done = len(replies) == n and all("completed" in r["info"]["time"] for r in replies)
    return replies if done and sid not in server.get("/session/status").json() else None


@pytest.fixture
def retry_server(project: Path, tmp_path: Path) -> Iterator[RoostServer]:
    """A server whose provider retries are fast: 3 attempts, 50 ms doubling to 100 ms."""
    (project / "roost.json").write_text(
        json.dumps({"retry": {"maxAttempts": 3, "initialMs": 50, "maxMs": 100}})
    )
    srv = RoostServer(project, tmp_path / "retry.db").start()
    try:
        yield srv
    finally:
        srv.close()


# -- admission ------------------------------------------------------------------------------


def test_prompt_async_answers_204_with_the_user_message_already_listed(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Delay(0.5), Text("later")]))
    sid = server.create_session()["id"]
    _send(server, sid, prompt_body("stored before the 204"))
    listed = server.messages(sid)  # right after the 204: no waiting
    assert listed[0]["info"]["role"] == "user"
    assert _texts(listed[0]) == ["stored before the 204"]
    assert not any("completed" in m["info"]["time"] for m in _role(listed, "assistant"))
    server.wait_idle(sid)


def test_a_large_prompt_is_stored_and_streamed_exactly_live_and_replayed(
    server: RoostServer,
) -> None:
    # Past every large-body path: the body is joined and parsed off the loop, the long text is
    # decoded and encoded in slices, the rows are bound as bytes, frames are built as bytes.
    long_text = 'He said "naïve café" — \\ / 😀\n\t\u2028 </p>' * 40_000  # 1.8 MB of UTF-8
    parts = [{"type": "text", "text": long_text}] + [
        {"type": "text", "text": f"part {n}"} for n in range(1500)
    ]
    sid = server.create_session()["id"]
    with EventCollector(server.url) as live:
        _send(server, sid, {"noReply": True, "parts": parts})
        frames = live.wait_until(_part_frames(len(parts)), what="every part's frame")
    assert frames[0]["properties"]["part"]["text"] == long_text
    (user,) = server.messages(sid)
    assert _texts(user) == [p["text"] for p in parts]
    first = next(i for i, f in live.snapshot() if f["type"] == "message.updated")
    assert first is not None
    with EventCollector(server.url, last_event_id=str(int(first) - 1)) as replay:
        replayed = replay.wait_until(_part_frames(len(parts)), what="every part's frame again")
    assert replayed[0]["properties"]["part"]["text"] == long_text


def test_a_body_without_message_or_part_ids_gets_server_minted_ids(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    body = {"parts": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}
    _send(server, sid, body)
    user = server.messages(sid)[0]
    mid = user["info"]["id"]
    assert MESSAGE_ID.match(mid), mid
    part_ids = [p["id"] for p in user["parts"]]
    assert all(PART_ID.match(p) for p in part_ids), part_ids
    assert len(set(part_ids)) == 2
    assert all(p["messageID"] == mid and p["sessionID"] == sid for p in user["parts"])
    msgs = server.wait_idle(sid)
    assert msgs[1]["info"]["parentID"] == mid


def test_the_same_message_id_sent_twice_is_one_message_and_one_llm_request(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Delay(0.3), Text("answered once")]), text_turn("sentinel answer"))
    sid = server.create_session()["id"]
    body = {"messageID": new_message_id(), **prompt_body("once")}
    _send(server, sid, body)
    _send(server, sid, body)  # the client retrying while the turn runs
    server.wait_idle(sid)
    _send(server, sid, body)  # and once more after it ended
    # A later prompt runs after anything the duplicates might have queued: once it is
    # answered, no duplicate turn can still be pending.
    _send(server, sid, prompt_body("sentinel"))
    replies = wait_for(lambda: _completed_replies(server, sid, 2), what="the sentinel answered")
    msgs = server.messages(sid)
    assert [m["info"]["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert msgs[0]["info"]["id"] == body["messageID"]
    assert [_texts(r) for r in replies] == [["answered once"], ["sentinel answer"]]
    requests = llm.requests
    assert len(requests) == 2
    assert _user_contents(requests[1]) == ["once", "sentinel"]


def test_client_supplied_message_and_part_ids_are_kept(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    mid, pid = new_message_id(), new_part_id()
    _send(
        server,
        sid,
        {"messageID": mid, "parts": [{"id": pid, "type": "text", "text": "mine"}]},
    )
    stored = server.get(f"/session/{sid}/message/{mid}")
    assert stored.status_code == 200
    assert stored.json()["info"]["id"] == mid
    assert [(p["id"], p["messageID"]) for p in stored.json()["parts"]] == [(pid, mid)]
    msgs = server.wait_idle(sid)
    assert msgs[-1]["info"]["parentID"] == mid


def test_prompts_sent_during_a_slow_turn_are_stored_at_once_and_answered_in_order(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Delay(0.6), Text("one")]), text_turn("two"), text_turn("three"))
    sid = server.create_session()["id"]
    for text in ("first", "second", "third"):
        _send(server, sid, prompt_body(text))
    listed = server.messages(sid)
    users = _role(listed, "user")
    assert [_texts(u) for u in users] == [["first"], ["second"], ["third"]]
    assert not any("completed" in m["info"]["time"] for m in _role(listed, "assistant"))
    assert len(llm.requests) <= 1  # the first answer is still being delayed

    replies = wait_for(lambda: _completed_replies(server, sid, 3), what="three answers")
    assert [_texts(r) for r in replies] == [["one"], ["two"], ["three"]]
    assert [r["info"]["parentID"] for r in replies] == [u["info"]["id"] for u in users]
    for earlier, later in itertools.pairwise(replies):
        assert later["info"]["time"]["created"] >= earlier["info"]["time"]["completed"]
    # Each request ends with its own prompt and leaves out the prompts queued after it.
    assert [_user_contents(r) for r in llm.requests] == [
        ["first"],
        ["first", "second"],
        ["first", "second", "third"],
    ]


# -- the stored turn ------------------------------------------------------------------------


def test_a_turn_stores_step_start_reasoning_text_and_step_finish_with_usage(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Reasoning("let me think"), Text("the answer")], usage=(12, 3)))
    sid = server.create_session()["id"]
    msgs = server.prompt(sid, "question")
    user, reply = msgs
    info = reply["info"]
    assert info["parentID"] == user["info"]["id"]
    assert info["finish"] == "stop" and "error" not in info
    assert info["time"]["completed"] >= info["time"]["created"]
    assert (info["tokens"]["input"], info["tokens"]["output"]) == (12, 3)
    parts = reply["parts"]
    assert [p["type"] for p in parts] == ["step-start", "reasoning", "text", "step-finish"]
    assert all(p["messageID"] == info["id"] and p["sessionID"] == sid for p in parts)
    assert parts[1]["text"] == "let me think" and "end" in parts[1]["time"]
    assert parts[2]["text"] == "the answer" and "end" in parts[2]["time"]
    finish = parts[3]
    assert finish["reason"] == "stop"
    assert (finish["tokens"]["input"], finish["tokens"]["output"]) == (12, 3)


def test_sync_message_post_returns_the_assistant_message_once_the_turn_ends(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Delay(0.3), Text("synchronous answer")]))
    sid = server.create_session()["id"]
    response = server.post(f"/session/{sid}/message", json=prompt_body("wait for it"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["info"]["role"] == "assistant"
    assert body["info"]["finish"] == "stop" and "completed" in body["info"]["time"]
    assert _texts(body) == ["synchronous answer"]
    assert [p["type"] for p in body["parts"]] == ["step-start", "text", "step-finish"]
    stored = server.messages(sid)
    assert body == stored[-1]
    assert body["info"]["parentID"] == stored[0]["info"]["id"]
    assert sid not in server.get("/session/status").json()


def test_session_status_is_busy_while_the_provider_hangs_and_empty_after(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    quiet = server.create_session()["id"]
    server.prompt(quiet, "answered")
    llm.enqueue(Turn([Hang()]))
    sid = server.create_session()["id"]
    _send(server, sid, prompt_body("hang"))
    llm.wait_for_requests(2)
    status = server.get("/session/status").json()
    assert list(status) == [sid]
    assert status[sid]["type"] == "busy"
    assert server.post(f"/session/{sid}/abort").json() is True
    assert server.get("/session/status").json() == {}


# -- provider failures ----------------------------------------------------------------------


def test_a_provider_400_is_an_api_error_with_session_error_and_the_session_idle(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Fail(400, "bad request from the model")]))
    sid = server.create_session()["id"]
    with EventCollector(server.url) as events:
        _send(server, sid, prompt_body("x"))
        frames = events.wait_until(until_idle(sid), what="session.idle")
    msgs = server.messages(sid)
    error = msgs[-1]["info"]["error"]
    assert error["name"] == "APIError"
    assert error["data"]["statusCode"] == 400 and error["data"]["isRetryable"] is False
    assert "bad request from the model" in error["data"]["message"]
    assert "completed" in msgs[-1]["info"]["time"]
    types = types_of(frames)
    assert types[-3:] == ["session.error", "session.status", "session.idle"]
    assert frames[-3][1]["properties"] == {"sessionID": sid, "error": error}
    assert frames[-2][1]["properties"]["status"] == {"type": "idle"}
    assert sid not in server.get("/session/status").json()
    assert len(llm.requests) == 1  # a 400 is not retried


def test_a_429_shows_retry_status_then_the_answer(
    retry_server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Fail(429, "slow down")]), text_turn("after the retry"))
    sid = retry_server.create_session()["id"]
    with EventCollector(retry_server.url) as events:
        _send(retry_server, sid, prompt_body("x"))
        frames = events.wait_until(until_idle(sid), what="session.idle")
    statuses = [f["properties"]["status"] for _, f in frames if f["type"] == "session.status"]
    retry = next(s for s in statuses if s["type"] == "retry")
    assert retry["attempt"] == 1 and "slow down" in retry["message"]
    assert isinstance(retry["next"], int) and retry["next"] > 0
    after = statuses[statuses.index(retry) + 1 :]
    assert [s["type"] for s in after] == ["busy", "idle"]  # running again, then done
    reply = retry_server.messages(sid)[-1]
    first_text = next(
        i
        for i, (_, f) in enumerate(frames)
        if f["type"] == "message.part.updated"
        and f["properties"]["part"]["type"] == "text"
        and f["properties"]["part"]["messageID"] == reply["info"]["id"]
    )
    retry_at = next(
        i
        for i, (_, f) in enumerate(frames)
        if f["type"] == "session.status" and f["properties"]["status"]["type"] == "retry"
    )
    assert retry_at < first_text
    assert "error" not in reply["info"] and reply["info"]["finish"] == "stop"
    assert _texts(reply) == ["after the retry"]
    assert len(llm.requests) == 2


def test_500s_beyond_max_attempts_end_in_an_api_error_after_exactly_max_attempts_requests(
    retry_server: RoostServer, llm: ScriptedLLM
) -> None:
    # A fourth request would get the success turn and the error would never show.
    llm.enqueue(*(Turn([Fail(500, "broken")]) for _ in range(3)), text_turn("too late"))
    sid = retry_server.create_session()["id"]
    with EventCollector(retry_server.url) as events:
        _send(retry_server, sid, prompt_body("x"))
        frames = events.wait_until(until_idle(sid), what="session.idle")
    reply = retry_server.messages(sid)[-1]
    error = reply["info"]["error"]
    assert error["name"] == "APIError"
    assert error["data"]["statusCode"] == 500 and error["data"]["isRetryable"] is True
    assert _texts(reply) == []
    retries = [
        f["properties"]["status"]["attempt"]
        for _, f in frames
        if f["type"] == "session.status" and f["properties"]["status"]["type"] == "retry"
    ]
    assert retries == [1, 2]
    assert "session.error" in types_of(frames)
    assert len(llm.requests) == 3


def test_a_dropped_stream_keeps_the_text_received_and_shows_an_error(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Text("partial answer"), Delay(0.2), Drop()]), text_turn("retried"))
    sid = server.create_session()["id"]
    with EventCollector(server.url) as events:
        _send(server, sid, prompt_body("x"))
        frames = events.wait_until(until_idle(sid), what="session.idle")
    reply = server.messages(sid)[-1]
    assert reply["info"]["error"]["name"] == "APIError"
    assert "completed" in reply["info"]["time"]
    assert _texts(reply) == ["partial answer"]
    assert "session.error" in types_of(frames)
    assert sid not in server.get("/session/status").json()
    assert len(llm.requests) == 1  # output had started: not retried, nothing duplicated


# -- abort ----------------------------------------------------------------------------------


def test_abort_while_the_provider_hangs_idles_once_and_the_session_answers_again(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Hang()]), text_turn("back again"))
    sid = server.create_session()["id"]
    with EventCollector(server.url) as events:
        _send(server, sid, prompt_body("hang"))
        llm.wait_for_requests(1)
        response = server.post(f"/session/{sid}/abort")
        assert response.status_code == 200 and response.json() is True
        # The outcome is stored before abort answers.
        aborted = server.messages(sid)[-1]
        assert aborted["info"]["error"]["name"] == "MessageAbortedError"
        assert "completed" in aborted["info"]["time"]
        assert sid not in server.get("/session/status").json()

        _send(server, sid, prompt_body("again"))
        frames = events.wait_until(until_idle(sid, 2), what="the second session.idle")
    types = types_of(frames)
    next_prompt = next(
        i
        for i, (_, f) in enumerate(frames)
        if f["type"] == "message.updated"
        and f["properties"]["info"]["role"] == "user"
        and i > types.index("session.idle")
    )
    # Exactly one idle ends the aborted turn, one ends the next; nothing idles twice.
    assert types[:next_prompt].count("session.idle") == 1
    assert types.count("session.idle") == 2
    errors = [f for _, f in frames[:next_prompt] if f["type"] == "session.error"]
    assert [e["properties"]["error"]["name"] for e in errors] == ["MessageAbortedError"]
    msgs = server.messages(sid)
    assert [m["info"]["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert "error" not in msgs[-1]["info"] and _texts(msgs[-1]) == ["back again"]
    assert len(llm.requests) == 2


def test_a_turn_in_a_long_uncompacted_session_sends_the_model_the_whole_history(
    project: Path, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """150 finished turns (about 0.8 MiB stored, past ``OFF_LOOP_CHARS``: the request is
    built on a worker thread) then a prompt: the model gets every earlier message, in order,
    and the answer is stored."""
    db_path = tmp_path / "long.db"
    sid = asyncio.run(fill_long_session(db_path, 150, str(project)))
    server = RoostServer(project, db_path).start()
    try:
        llm.enqueue(text_turn("all of it, read"))
        model = {"providerID": PROVIDER_ID, "modelID": MODEL_ID}
        answer = server.post(
            f"/session/{sid}/message",
            json={"parts": [{"type": "text", "text": "what came first?"}], "model": model},
        )
        assert answer.status_code == 200, answer.text
        assert [p.get("text") for p in answer.json()["parts"] if p["type"] == "text"] == [
            "all of it, read"
        ]
        sent = llm.requests[-1]["messages"]
        assert sent[0]["role"] == "system" and len(sent) == 1 + 2 * 150 + 1
        texts = [str(m.get("content")) for m in sent[1:]]
        assert texts[0].startswith("question 0 ") and texts[1].startswith("answer 0 ")
        assert texts[-3].startswith("question 149 ") and texts[-2].startswith("answer 149 ")
        assert texts[-1] == "what came first?"
    finally:
        server.close()
