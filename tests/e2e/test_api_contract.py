"""Issue #2's HTTP contract against a real server: shapes, errors, admission, events, auth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from roost.ids import new_message_id, new_part_id
from tests.support.scripted_llm import (
    Delay,
    Drop,
    Fail,
    Reasoning,
    ScriptedLLM,
    Text,
    Turn,
    text_turn,
)
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def _texts(msg: dict[str, Any]) -> list[str]:
    return [p["text"] for p in msg["parts"] if p["type"] == "text"]


# -- sessions -------------------------------------------------------------------------------


def test_session_list_includes_children_and_roots_leaves_them_out(server: RoostServer) -> None:
    parent = server.create_session(title="parent")
    child = server.create_session(parentID=parent["id"], title="child")
    listed = {s["id"]: s for s in server.get("/session").json()}
    assert listed[child["id"]]["parentID"] == parent["id"]
    roots = {s["id"] for s in server.get("/session?roots=true").json()}
    assert parent["id"] in roots and child["id"] not in roots
    children = server.get(f"/session/{parent['id']}/children").json()
    assert [c["id"] for c in children] == [child["id"]]


def test_unknown_parent_is_a_400_and_creates_nothing(server: RoostServer) -> None:
    response = server.post("/session", json={"parentID": "ses_doesnotexist000000000000"})
    assert response.status_code == 400
    assert response.json()["name"] == "BadRequest"
    assert server.get("/session").json() == []


def test_patch_and_delete_session(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    patched = server.request("PATCH", f"/session/{sid}", json={"title": "renamed"})
    assert patched.status_code == 200 and patched.json()["title"] == "renamed"
    assert server.get(f"/session/{sid}").json()["title"] == "renamed"
    assert server.request("DELETE", f"/session/{sid}").json() is True
    gone = server.get(f"/session/{sid}")
    assert gone.status_code == 404
    assert gone.json() == {
        "name": "NotFoundError",
        "data": {"message": f"Session not found: {sid}"},
    }


def test_deleting_a_parent_deletes_its_children(server: RoostServer) -> None:
    parent = server.create_session()["id"]
    child = server.create_session(parentID=parent)["id"]
    assert server.request("DELETE", f"/session/{parent}").json() is True
    assert server.get(f"/session/{child}").status_code == 404


def test_bad_ids_are_400_never_500(server: RoostServer) -> None:
    for path in ("/session/nope", "/session/nope/message", "/session/abc/children"):
        response = server.get(path)
        assert response.status_code == 400, path
        body = response.json()
        assert body["name"] == "BadRequest" and body["data"]["kind"] == "Params"
    assert server.get("/no/such/route").status_code == 404


# -- admission ------------------------------------------------------------------------------


def test_malformed_bodies_are_400_and_store_nothing(server: RoostServer, llm: ScriptedLLM) -> None:
    sid = server.create_session()["id"]
    for body in (
        {},
        {"parts": "text"},
        {"parts": [{"type": "text"}]},
        {"messageID": "abc", "parts": [{"type": "text", "text": "x"}]},
    ):
        response = server.post(f"/session/{sid}/prompt_async", json=body)
        assert response.status_code == 400, body
        assert response.json()["data"]["kind"] == "Payload"
    assert server.messages(sid) == []
    assert llm.requests == []


def test_unknown_session_agent_or_model_is_refused_before_anything_is_stored(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    missing = server.post(
        "/session/ses_doesnotexist000000000000/prompt_async", json=prompt_body("x")
    )
    assert missing.status_code == 404
    sid = server.create_session()["id"]
    agent = server.post(f"/session/{sid}/prompt_async", json=prompt_body("x", agent="wizard"))
    assert agent.status_code == 400 and "wizard" in agent.json()["data"]["message"]
    model = server.post(
        f"/session/{sid}/prompt_async",
        json=prompt_body("x", model={"providerID": "nope", "modelID": "m"}),
    )
    assert model.status_code == 400 and "nope" in model.json()["data"]["message"]
    assert server.messages(sid) == []
    assert llm.requests == []


def test_older_clients_without_ids_get_server_ids_and_client_ids_are_kept(
    server: RoostServer,
) -> None:
    sid = server.create_session()["id"]
    server.prompt(sid, "no ids")
    user = server.messages(sid)[0]
    assert user["info"]["id"].startswith("msg_")
    assert user["parts"][0]["id"].startswith("prt_")
    part_id = new_part_id()
    mine = {"messageID": new_message_id(), "parts": [{"id": part_id, "type": "text", "text": "x"}]}
    assert server.post(f"/session/{sid}/prompt_async", json=mine).status_code == 204
    server.wait_idle(sid)
    stored = server.get(f"/session/{sid}/message/{mine['messageID']}").json()
    assert stored["parts"][0]["id"] == part_id


def test_the_same_message_id_twice_is_one_message_and_one_turn(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    body = {"messageID": new_message_id(), **prompt_body("once")}
    assert server.post(f"/session/{sid}/prompt_async", json=body).status_code == 204
    assert server.post(f"/session/{sid}/prompt_async", json=body).status_code == 204
    msgs = server.wait_idle(sid)
    assert [m["info"]["role"] for m in msgs] == ["user", "assistant"]
    assert len(llm.requests) == 1


def test_prompts_arriving_during_a_turn_are_stored_and_answered_in_order(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Delay(0.5), Text("one")]), text_turn("two"), text_turn("three"))
    sid = server.create_session()["id"]
    for text in ("first", "second", "third"):
        assert (
            server.post(f"/session/{sid}/prompt_async", json=prompt_body(text)).status_code == 204
        )
    users = [m for m in server.messages(sid) if m["info"]["role"] == "user"]
    assert [_texts(m) for m in users] == [["first"], ["second"], ["third"]]

    def answered() -> list[dict[str, Any]] | None:
        replies = [m for m in server.messages(sid) if m["info"]["role"] == "assistant"]
        return (
            replies
            if len(replies) == 3 and all("completed" in r["info"]["time"] for r in replies)
            else None
        )

    replies = wait_for(answered, what="three answers")
    assert [_texts(r) for r in replies] == [["one"], ["two"], ["three"]]
    assert [r["info"]["parentID"] for r in replies] == [u["info"]["id"] for u in users]
    assert [r["messages"][-1]["content"] for r in llm.requests] == ["first", "second", "third"]


def test_sync_prompt_answers_with_the_assistant_message(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Reasoning("thinking"), Text("the answer")], usage=(12, 3)))
    sid = server.create_session()["id"]
    response = server.post(f"/session/{sid}/message", json=prompt_body("question"))
    assert response.status_code == 200
    body = response.json()
    assert body["info"]["role"] == "assistant" and body["info"]["finish"] == "stop"
    kinds = [p["type"] for p in body["parts"]]
    assert kinds == ["step-start", "reasoning", "text", "step-finish"]
    assert body["parts"][-1]["tokens"]["input"] == 12
    assert body["info"]["tokens"]["output"] == 3


def test_no_reply_stores_the_user_message_only(server: RoostServer, llm: ScriptedLLM) -> None:
    sid = server.create_session()["id"]
    response = server.post(f"/session/{sid}/message", json={**prompt_body("note"), "noReply": True})
    assert response.status_code == 200 and response.json()["info"]["role"] == "user"
    assert llm.requests == []


def test_message_list_limit_get_and_delete(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    server.prompt(sid, "a")
    server.prompt(sid, "b")
    newest = server.get(f"/session/{sid}/message?limit=1").json()
    assert len(newest) == 1 and newest[0]["info"]["role"] == "assistant"
    first = server.messages(sid)[0]["info"]["id"]
    assert server.get(f"/session/{sid}/message/{first}").json()["info"]["id"] == first
    assert server.request("DELETE", f"/session/{sid}/message/{first}").json() is True
    assert server.get(f"/session/{sid}/message/{first}").status_code == 404


# -- provider failures ----------------------------------------------------------------------


@pytest.fixture
def retry_project(project: Path, llm: ScriptedLLM) -> Path:
    (project / "roost.json").write_text(
        json.dumps({"retry": {"maxAttempts": 3, "initialMs": 50, "maxMs": 100}})
    )
    return project


@pytest.fixture
def retry_server(retry_project: Path, tmp_path: Path) -> Any:
    srv = RoostServer(retry_project, tmp_path / "retry.db").start()
    try:
        yield srv
    finally:
        srv.close()


def _session_events(server: RoostServer, sid: str) -> list[dict[str, Any]]:
    seen = []
    for _, frame in server.events(last_event_id="0"):
        if frame["properties"].get("sessionID") == sid:
            seen.append(frame)
            if frame["type"] == "session.idle":
                return seen
    return seen


def test_a_provider_error_is_stored_emitted_and_the_session_goes_idle(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Fail(400, "bad request from the model")]))
    sid = server.create_session()["id"]
    msgs = server.prompt(sid, "x")
    error = msgs[-1]["info"]["error"]
    assert error["name"] == "APIError"
    assert error["data"]["statusCode"] == 400 and error["data"]["isRetryable"] is False
    assert "bad request from the model" in error["data"]["message"]
    types = [f["type"] for f in _session_events(server, sid)]
    assert "session.error" in types and types[-1] == "session.idle"
    assert server.get("/session/status").json() == {}


def test_429_is_retried_with_retry_status_then_answered(
    retry_server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Fail(429, "slow down")]), text_turn("after the retry"))
    sid = retry_server.create_session()["id"]
    msgs = retry_server.prompt(sid, "x")
    assert _texts(msgs[-1]) == ["after the retry"]
    statuses = [
        f["properties"]["status"]
        for f in _session_events(retry_server, sid)
        if f["type"] == "session.status"
    ]
    retry = next(s for s in statuses if s["type"] == "retry")
    assert retry["attempt"] == 1 and "slow down" in retry["message"] and retry["next"] > 0


def test_5xx_beyond_the_attempts_ends_in_a_visible_error(
    retry_server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(*(Turn([Fail(500, "broken")]) for _ in range(3)))
    sid = retry_server.create_session()["id"]
    msgs = retry_server.prompt(sid, "x")
    assert msgs[-1]["info"]["error"]["data"]["statusCode"] == 500
    assert len(llm.requests) == 3


def test_a_dropped_stream_keeps_the_text_received_and_shows_an_error(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(Turn([Text("partial answer"), Delay(0.1), Drop()]))
    sid = server.create_session()["id"]
    msgs = server.prompt(sid, "x")
    assert "error" in msgs[-1]["info"]
    assert "".join(_texts(msgs[-1])) == "partial answer"


# -- events ---------------------------------------------------------------------------------


def test_a_long_answer_is_coalesced_but_complete(server: RoostServer, llm: ScriptedLLM) -> None:
    text = "".join(f"{i:04d} " for i in range(600))  # 3,000 characters
    llm.enqueue(Turn([Text(text, chunk_chars=3)]))
    sid = server.create_session()["id"]
    msgs = server.prompt(sid, "long")
    assert _texts(msgs[-1]) == [text]
    deltas = [f for f in _session_events(server, sid) if f["type"] == "message.part.delta"]
    assert "".join(d["properties"]["delta"] for d in deltas) == text
    assert 0 < len(deltas) < 1000 / 4  # 1,000 chunks from the provider


def test_events_carry_ids_and_last_event_id_replays_exactly_what_was_missed(
    server: RoostServer,
) -> None:
    sid = server.create_session()["id"]
    server.prompt(sid, "one")
    full = []
    for event_id, frame in server.events(last_event_id="0"):
        full.append((event_id, frame))
        if frame["type"] == "session.idle":
            break
    logged = [(i, f) for i, f in full if f["type"] != "server.connected"]
    ids = [int(i) for i, _ in logged if i is not None]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == len(logged)
    middle = full[len(full) // 2][0]
    server.prompt(sid, "two")
    resumed = []
    for event_id, frame in server.events(last_event_id=middle):
        if frame["type"] == "server.connected":
            continue
        resumed.append(int(event_id or 0))
        if frame["type"] == "session.idle" and resumed[-1] > ids[-1]:
            break
    everything = []
    for event_id, frame in server.events(last_event_id="0"):
        if frame["type"] != "server.connected":
            everything.append(int(event_id or 0))
        if everything and everything[-1] == resumed[-1]:
            break
    assert middle is not None
    assert resumed == [i for i in everything if i > int(middle)]


def test_event_order_of_a_prompt_follows_opencode(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    server.prompt(sid, "hi")
    types = [f["type"] for f in _session_events(server, sid)]
    start = types.index("message.updated")
    assert types[start : start + 5] == [
        "message.updated",
        "message.part.updated",
        "session.updated",
        "session.status",
        "message.updated",
    ]
    assert types[-3:] == ["message.updated", "session.status", "session.idle"]


# -- meta and auth --------------------------------------------------------------------------


def test_config_agents_health_and_doc(server: RoostServer) -> None:
    config = server.get("/config").json()
    assert config["provider"]["scripted"]["options"]["apiKey"] == "***"
    agents = {a["name"]: a for a in server.get("/agent").json()}
    assert {"build", "plan", "general", "explore"} <= set(agents)
    assert agents["general"]["mode"] == "subagent"
    assert server.get("/global/health").json()["healthy"] is True
    doc = server.get("/doc").json()
    assert "/session" in doc["paths"] and "/session/{sessionID}/prompt_async" in doc["paths"]


def test_basic_auth_when_a_password_is_set(project: Path, tmp_path: Path) -> None:
    srv = RoostServer(
        project, tmp_path / "auth.db", env={"ROOST_SERVER_PASSWORD": "s3cret"}
    ).start()
    try:
        denied = srv.get("/session")
        assert denied.status_code == 401 and "basic" in denied.headers["www-authenticate"].lower()
        assert srv.get("/session", auth=("opencode", "wrong")).status_code == 401
        assert srv.get("/session", auth=("opencode", "s3cret")).status_code == 200
    finally:
        srv.close()
