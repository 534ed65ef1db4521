"""Slash commands as OpenCode's TUI and CLI use them: listed by ``GET /command``, expanded and
run by ``POST /session/{id}/command``, a sub-agent task when the command says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.engine.commands import hints
from tests.support.events import EventCollector, session_frames, types_of
from tests.support.openapi import validate
from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import RoostServer, project_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def commanded(project: Path, llm: ScriptedLLM, tmp_path: Path) -> Iterator[RoostServer]:
    config = project_config(
        llm.base_url,
        command={
            "greet": {
                "template": (
                    "Say $1 to $2 about $ARGUMENTS, today !`echo is-tuesday`, see @notes.txt"
                ),
                "description": "greets",
            },
            "plain": {"template": "Just do it"},
        },
    )
    (project / "opencode.json").write_text(json.dumps(config))
    (project / "notes.txt").write_text("the notes say hello\n")
    folder = project / ".opencode" / "command"
    folder.mkdir(parents=True)
    (folder / "audit.md").write_text(
        "---\ndescription: audit the code\nagent: explore\nsubtask: true\n---\nAudit $ARGUMENTS\n"
    )
    srv = RoostServer(project, tmp_path / "cmd.db").start()
    try:
        yield srv
    finally:
        srv.close()


def test_commands_are_listed_with_their_hints(commanded: RoostServer) -> None:
    listed = {c["name"]: c for c in commanded.get("/command").json()}
    for command in listed.values():
        validate(command, "Command")
    assert {"init", "review", "greet", "plain", "audit"} <= set(listed)
    assert listed["review"]["subtask"] is True
    assert listed["greet"]["hints"] == ["$1", "$2", "$ARGUMENTS"]
    assert listed["audit"] == {
        "name": "audit",
        "description": "audit the code",
        "agent": "explore",
        "source": "command",
        "subtask": True,
        "template": "Audit $ARGUMENTS",
        "hints": ["$ARGUMENTS"],
    }
    assert str(commanded.directory) in listed["init"]["template"]


def test_a_command_is_expanded_and_run_as_a_prompt(
    commanded: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("hello done"))
    sid = commanded.create_session()["id"]
    with EventCollector(commanded.url) as events:
        response = commanded.post(
            f"/session/{sid}/command",
            json={"command": "greet", "arguments": 'hi "the team" and more'},
        )
        assert response.status_code == 200, response.text
        frames = events.wait_until(
            lambda f: f if "command.executed" in types_of(session_frames(f, sid)) else None,
            what="command.executed",
        )
    validate(response.json()["info"], "AssistantMessage")
    [user] = [m for m in llm.requests[-1]["messages"] if m["role"] == "user"]
    assert user["content"].startswith(
        'Say hi to the team and more about hi "the team" and more, today is-tuesday'
    )
    assert "the notes say hello" in user["content"]  # @notes.txt became a read file part
    executed = [f for _, f in session_frames(frames, sid) if f["type"] == "command.executed"]
    assert executed[0]["properties"]["name"] == "greet"
    assert executed[0]["properties"]["arguments"] == 'hi "the team" and more'


def test_arguments_are_appended_to_a_template_without_placeholders(
    commanded: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("ok"))
    sid = commanded.create_session()["id"]
    commanded.post(f"/session/{sid}/command", json={"command": "plain", "arguments": "now"})
    [user] = [m for m in llm.requests[-1]["messages"] if m["role"] == "user"]
    assert user["content"] == "Just do it\n\nnow"


def test_a_subtask_command_runs_in_a_child_session(
    commanded: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(text_turn("audited: all fine"))
    sid = commanded.create_session()["id"]
    response = commanded.post(
        f"/session/{sid}/command", json={"command": "audit", "arguments": "src/"}
    )
    assert response.status_code == 200, response.text
    [task] = [p for p in response.json()["parts"] if p["type"] == "tool"]
    assert task["tool"] == "task" and task["state"]["status"] == "completed"
    assert "audited: all fine" in task["state"]["output"]
    [child] = commanded.get(f"/session/{sid}/children").json()
    [request] = llm.requests
    assert request["messages"][-1]["content"] == "Audit src/"
    child_messages = commanded.messages(child["id"])
    assert child_messages[0]["info"]["agent"] == "explore"


def test_an_unknown_command_is_a_404(commanded: RoostServer) -> None:
    sid = commanded.create_session()["id"]
    response = commanded.post(f"/session/{sid}/command", json={"command": "nope", "arguments": ""})
    assert response.status_code == 404
    assert response.json()["name"] == "NotFoundError"


def test_hints() -> None:
    assert hints("$2 then $1 then $10 and $ARGUMENTS") == ["$1", "$2", "$10", "$ARGUMENTS"]
    assert hints("nothing") == []
