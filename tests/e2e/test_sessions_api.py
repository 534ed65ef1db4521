"""Sessions and messages over HTTP against a real server: shapes (checked against OpenCode's
OpenAPI schemas), id order, parent/child trees, updates, deletion and the message routes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from roost.api.responses import SLICE_CHARS
from tests.support.events import EventCollector, Frame
from tests.support.histories import fill_long_session
from tests.support.openapi import validate
from tests.support.scripted_llm import ScriptedLLM, Text, Turn, text_turn, tool_turn
from tests.support.server import RoostServer, project_config, prompt_body

pytestmark = pytest.mark.e2e

MISSING_SESSION = "ses_doesnotexist000000000000"
SESSION_ID = re.compile(r"^ses_[0-9a-f]{12}[0-9A-Za-z]{14}$")


def _now_ms() -> int:
    return int(time.time() * 1000)


def _iso_ms(epoch_ms: int) -> str:
    """JavaScript's ``Date.toISOString()``: ``2026-11-22T07:19:15.661Z``."""
    stamp = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=epoch_ms)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _valid_session(info: dict[str, Any]) -> dict[str, Any]:
    validate(info, "Session")
    return info


def _valid_message(message: dict[str, Any]) -> dict[str, Any]:
    """Check ``{info, parts}`` against ``UserMessage``/``AssistantMessage`` and ``Part``."""
    assert set(message) == {"info", "parts"}
    info = message["info"]
    validate(info, "UserMessage" if info["role"] == "user" else "AssistantMessage")
    for part in message["parts"]:
        validate(part, "Part")
        assert (part["sessionID"], part["messageID"]) == (info["sessionID"], info["id"])
    return message


def _assert_not_found(response: httpx.Response, message: str) -> None:
    assert response.status_code == 404, response.text
    body = response.json()
    validate(body, "NotFoundError")
    assert body == {"name": "NotFoundError", "data": {"message": message}}


def _delete(server: RoostServer, path: str) -> httpx.Response:
    return server.request("DELETE", path)


def _patch(server: RoostServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return server.request("PATCH", path, json=body)


def _texts(message: dict[str, Any]) -> list[str]:
    return [p["text"] for p in message["parts"] if p["type"] == "text"]


# -- sessions -------------------------------------------------------------------------------


def test_created_session_has_a_ses_id_the_project_directory_ms_times_and_a_default_title(
    server: RoostServer, project: Path
) -> None:
    before_ms = _now_ms()
    session = _valid_session(server.create_session())
    after_ms = _now_ms()

    assert SESSION_ID.match(session["id"]), session["id"]
    assert session["directory"] == str(project)
    created = session["time"]["created"]
    assert isinstance(created, int) and before_ms <= created <= after_ms
    assert session["time"]["updated"] == created
    assert session["title"] == f"New session - {_iso_ms(created)}"
    assert "parentID" not in session
    assert _valid_session(server.get(f"/session/{session['id']}").json()) == session


def test_session_ids_sort_newest_first(server: RoostServer) -> None:
    ids = [server.create_session()["id"] for _ in range(3)]
    assert ids[2] < ids[1] < ids[0]


def test_message_and_part_ids_sort_oldest_first(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(text_turn("one"), text_turn("two"))
    sid = server.create_session()["id"]
    server.prompt(sid, "first")
    messages = [_valid_message(m) for m in server.prompt(sid, "second")]

    # Listed in the order they were written: each answer right after the prompt it answers.
    assert [_texts(m) for m in messages] == [["first"], ["one"], ["second"], ["two"]]
    infos = [m["info"] for m in messages]
    assert [i.get("parentID") for i in infos[1::2]] == [i["id"] for i in infos[0::2]]
    message_ids = [i["id"] for i in infos]
    assert message_ids == sorted(set(message_ids))
    part_ids = [p["id"] for m in messages for p in m["parts"]]
    assert part_ids == sorted(set(part_ids))
    assert [p["type"] for p in messages[1]["parts"]] == ["step-start", "text", "step-finish"]


def test_session_list_shows_children_with_parent_id_and_roots_true_leaves_them_out(
    server: RoostServer,
) -> None:
    parent = server.create_session(title="parent")["id"]
    child = server.create_session(parentID=parent, title="child")["id"]
    grandchild = server.create_session(parentID=child, title="grandchild")["id"]

    listed = {s["id"]: _valid_session(s) for s in server.get("/session").json()}
    assert set(listed) == {parent, child, grandchild}
    assert "parentID" not in listed[parent]
    assert listed[child]["parentID"] == parent
    assert listed[grandchild]["parentID"] == child

    roots = server.get("/session", params={"roots": "true"}).json()
    assert [s["id"] for s in roots] == [parent]


def test_children_route_lists_only_direct_children(server: RoostServer) -> None:
    parent = server.create_session()["id"]
    first = server.create_session(parentID=parent)["id"]
    second = server.create_session(parentID=parent)["id"]
    server.create_session(parentID=first)  # a grandchild is not a child

    response = server.get(f"/session/{parent}/children")
    assert response.status_code == 200, response.text
    children = [_valid_session(s) for s in response.json()]
    assert {c["id"] for c in children} == {first, second}
    assert all(c["parentID"] == parent for c in children)
    assert server.get(f"/session/{second}/children").json() == []
    _assert_not_found(
        server.get(f"/session/{MISSING_SESSION}/children"),
        f"Session not found: {MISSING_SESSION}",
    )


def test_unknown_parent_id_is_a_400_and_creates_nothing(server: RoostServer) -> None:
    response = server.post("/session", json={"parentID": MISSING_SESSION})
    assert response.status_code == 400, response.text
    body = response.json()
    validate(body, "BadRequestError")
    assert body["name"] == "BadRequest"
    assert MISSING_SESSION in body["data"]["message"]
    assert server.get("/session").json() == []


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"permission": "bash", "pattern": "*", "action": "Deny"}, "Deny"),
        ({"permission": "bash", "action": "deny"}, "pattern"),
        ({"permission": "bash", "pattern": 3, "action": "deny"}, "pattern"),
        ("bash", "permission"),
    ],
)
def test_a_malformed_permission_rule_is_a_400_and_creates_nothing(
    server: RoostServer, rule: Any, named: str
) -> None:
    response = server.post("/session", json={"permission": [rule]})
    assert response.status_code == 400, response.text
    body = response.json()
    validate(body, "BadRequestError")
    assert body["name"] == "BadRequest"
    assert named in body["data"]["message"]
    assert server.get("/session").json() == []


def test_patching_a_malformed_permission_rule_is_a_400_and_changes_nothing(
    server: RoostServer,
) -> None:
    rules = [{"permission": "bash", "pattern": "rm *", "action": "deny"}]
    sid = server.create_session(permission=rules)["id"]
    response = _patch(
        server,
        f"/session/{sid}",
        {"permission": [{"permission": "bash", "pattern": "*", "action": "Allow"}]},
    )
    assert response.status_code == 400, response.text
    validate(response.json(), "BadRequestError")
    assert server.get(f"/session/{sid}").json()["permission"] == rules


def test_session_permission_rules_in_each_action_are_stored(server: RoostServer) -> None:
    rules = [
        {"permission": "bash", "pattern": "*", "action": action}
        for action in ("allow", "ask", "deny")
    ]
    assert _valid_session(server.create_session(permission=rules))["permission"] == rules


def test_patching_the_title_emits_session_updated_and_get_shows_it(server: RoostServer) -> None:
    session = server.create_session()
    sid = session["id"]

    def renamed(frames: list[Frame]) -> dict[str, Any] | None:
        return next(
            (
                f["properties"]["info"]
                for _, f in frames
                if f["type"] == "session.updated"
                and f["properties"].get("sessionID") == sid
                and f["properties"]["info"]["title"] == "renamed"
            ),
            None,
        )

    with EventCollector(server.url) as events:
        response = _patch(server, f"/session/{sid}", {"title": "renamed"})
        assert response.status_code == 200, response.text
        patched = _valid_session(response.json())
        emitted = events.wait_until(renamed, what="session.updated with the new title")

    assert patched["title"] == "renamed"
    assert patched["time"]["updated"] >= session["time"]["updated"]
    assert emitted == patched
    assert _valid_session(server.get(f"/session/{sid}").json())["title"] == "renamed"


def test_patching_time_archived_stores_it(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    archived_ms = _now_ms()
    response = _patch(server, f"/session/{sid}", {"time": {"archived": archived_ms}})
    assert response.status_code == 200, response.text
    assert _valid_session(response.json())["time"]["archived"] == archived_ms
    stored = _valid_session(server.get(f"/session/{sid}").json())
    assert stored["time"]["archived"] == archived_ms


def test_deleted_session_answers_404_not_found_error(server: RoostServer) -> None:
    sid = server.create_session()["id"]
    kept = server.create_session()["id"]

    response = _delete(server, f"/session/{sid}")
    assert response.status_code == 200, response.text
    assert response.json() is True

    _assert_not_found(server.get(f"/session/{sid}"), f"Session not found: {sid}")
    assert [s["id"] for s in server.get("/session").json()] == [kept]
    _assert_not_found(_delete(server, f"/session/{sid}"), f"Session not found: {sid}")


def test_deleting_a_parent_deletes_its_children(server: RoostServer) -> None:
    parent = server.create_session()["id"]
    child = server.create_session(parentID=parent)["id"]
    grandchild = server.create_session(parentID=child)["id"]
    other = server.create_session()["id"]

    assert _delete(server, f"/session/{parent}").json() is True

    for sid in (parent, child, grandchild):
        _assert_not_found(server.get(f"/session/{sid}"), f"Session not found: {sid}")
    assert [s["id"] for s in server.get("/session").json()] == [other]


def test_session_status_is_empty_while_every_session_is_idle(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    assert server.get("/session/status").json() == {}
    llm.enqueue(text_turn("done"))
    sid = server.create_session()["id"]
    server.prompt(sid, "hi")
    response = server.get("/session/status")
    assert response.status_code == 200
    assert response.json() == {}


# -- messages -------------------------------------------------------------------------------


def test_message_list_after_a_prompt_holds_the_prompt_and_the_answer(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("hello back"))
    sid = server.create_session()["id"]
    server.prompt(sid, "hello")

    response = server.get(f"/session/{sid}/message")
    assert response.status_code == 200, response.text
    user, assistant = (_valid_message(m) for m in response.json())
    assert user["info"]["role"] == "user" and _texts(user) == ["hello"]
    assert assistant["info"]["role"] == "assistant" and _texts(assistant) == ["hello back"]
    assert assistant["info"]["parentID"] == user["info"]["id"]
    assert {user["info"]["sessionID"], assistant["info"]["sessionID"]} == {sid}


def test_message_list_limit_returns_only_the_newest_messages(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("one"), text_turn("two"))
    sid = server.create_session()["id"]
    server.prompt(sid, "first")
    everything = server.prompt(sid, "second")

    newest = server.get(f"/session/{sid}/message", params={"limit": 1}).json()
    assert [_valid_message(m) for m in newest] == everything[-1:]
    assert _texts(newest[0]) == ["two"]
    two = server.get(f"/session/{sid}/message", params={"limit": 2}).json()
    assert two == everything[-2:]


def test_a_long_message_list_is_sent_in_slices_with_its_length_and_the_same_messages(
    project: Path, tmp_path: Path
) -> None:
    """200 messages (0.5 MiB, more than one ``responses.SLICE_CHARS`` slice) are sent as
    slices: the ``Content-Length`` is the body's, and the list holds every message as
    ``GET …/message/{id}`` gives it, oldest first."""
    db_path = tmp_path / "long.db"
    sid = asyncio.run(fill_long_session(db_path, 100, str(project)))
    server = RoostServer(project, db_path).start()
    try:
        response = server.get(f"/session/{sid}/message")
        assert response.status_code == 200, response.text
        assert len(response.content) > 2 * SLICE_CHARS
        assert response.headers["content-length"] == str(len(response.content))
        assert response.headers["content-type"] == "application/json"
        listed = response.json()
        assert len(listed) == 200
        for message in listed:
            one = server.get(f"/session/{sid}/message/{message['info']['id']}")
            assert _valid_message(one.json()) == message
        ids = [m["info"]["id"] for m in listed]
        assert ids == sorted(ids)
        assert server.get(f"/session/{sid}/message", params={"limit": 200}).json() == listed
    finally:
        server.close()


def test_get_message_returns_that_message_with_its_parts(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("answer"))
    sid = server.create_session()["id"]
    listed = server.prompt(sid, "question")

    for message in listed:
        mid = message["info"]["id"]
        response = server.get(f"/session/{sid}/message/{mid}")
        assert response.status_code == 200, response.text
        assert _valid_message(response.json()) == message


def test_deleted_message_answers_true_then_404(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(text_turn("answer"))
    sid = server.create_session()["id"]
    user, assistant = server.prompt(sid, "question")
    mid = user["info"]["id"]

    response = _delete(server, f"/session/{sid}/message/{mid}")
    assert response.status_code == 200, response.text
    assert response.json() is True

    _assert_not_found(server.get(f"/session/{sid}/message/{mid}"), f"Message not found: {mid}")
    assert server.messages(sid) == [assistant]


def test_messages_of_an_unknown_session_are_404(server: RoostServer) -> None:
    expected = f"Session not found: {MISSING_SESSION}"
    _assert_not_found(server.get(f"/session/{MISSING_SESSION}/message"), expected)
    _assert_not_found(
        server.get(f"/session/{MISSING_SESSION}/message/msg_doesnotexist000000000000"), expected
    )
    _assert_not_found(
        server.post(f"/session/{MISSING_SESSION}/message", json=prompt_body("hi")), expected
    )


def test_no_reply_prompt_stores_only_the_user_message_and_asks_no_model(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    sid = server.create_session()["id"]
    response = server.post(f"/session/{sid}/message", json={**prompt_body("note"), "noReply": True})
    assert response.status_code == 200, response.text
    body = _valid_message(response.json())
    assert body["info"]["role"] == "user" and body["info"]["sessionID"] == sid
    assert _texts(body) == ["note"]

    assert server.messages(sid) == [body]
    assert server.get("/session/status").json() == {}
    assert llm.requests == []


def test_session_tokens_cost_and_model_are_updated_after_each_step(
    project: Path, llm: ScriptedLLM, tmp_path: Path
) -> None:
    config = project_config(llm.base_url)
    models = config["provider"]["scripted"]["models"]
    models["scripted-model"] = {"cost": {"input": 3, "output": 15}}
    (project / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(project, tmp_path / "usage.db").start()
    try:
        sid = srv.create_session()["id"]
        llm.enqueue(Turn([Text("one")], usage=(100, 20)))
        srv.prompt(sid, "first")
        llm.enqueue(tool_turn("todowrite", {"todos": []}), Turn([Text("two")], usage=(7, 3)))
        srv.prompt(sid, "second", model={"providerID": "scripted", "modelID": "other-model"})

        session = srv.get(f"/session/{sid}").json()
        validate(session, "Session")
        # 100+20, then two steps on other-model: the tool step (10, 5) and the answer (7, 3).
        assert session["tokens"]["input"] == 117
        assert session["tokens"]["output"] == 28
        assert session["cost"] == pytest.approx((100 * 3 + 20 * 15) / 1_000_000)
        assert session["model"] == {"id": "other-model", "providerID": "scripted"}
        [first] = [m for m in srv.messages(sid) if m["info"]["role"] == "assistant"][:1]
        assert first["info"]["cost"] == pytest.approx(600 / 1_000_000)
    finally:
        srv.close()
