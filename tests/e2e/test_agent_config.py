"""Agent configuration through a real server: instructions, step limits, wait deadlines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer, project_config, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def _server(project: Path, tmp_path: Path, llm: ScriptedLLM, **config: Any) -> RoostServer:
    base = project_config(llm.base_url)
    roost = config.pop("roost", None)
    base.update(config)
    (project / "opencode.json").write_text(json.dumps(base))
    if roost is not None:
        (project / "roost.json").write_text(json.dumps(roost))
    return RoostServer(project, tmp_path / "cfg.db").start()


@pytest.fixture
def make_server(project: Path, tmp_path: Path, llm: ScriptedLLM) -> Iterator[Any]:
    started: list[RoostServer] = []

    def make(**config: Any) -> RoostServer:
        srv = _server(project, tmp_path, llm, **config)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.close()


def test_agents_md_goes_into_the_system_prompt(
    project: Path, make_server: Any, llm: ScriptedLLM
) -> None:
    (project / "AGENTS.md").write_text("Always answer in haiku.\n")
    server = make_server()
    server.prompt(server.create_session()["id"], "hi")
    system = llm.requests[0]["messages"][0]
    assert system["role"] == "system"
    assert "Always answer in haiku." in system["content"]
    assert "AGENTS.md" in system["content"]


def test_the_step_limit_ends_a_turn_that_keeps_calling_tools(
    make_server: Any, llm: ScriptedLLM
) -> None:
    server = make_server(agent={"build": {"steps": 2}})
    llm.enqueue(tool_turn("todowrite", {"todos": []}), text_turn("out of steps, stopping"))
    sid = server.create_session()["id"]
    msgs = server.prompt(sid, "loop forever")
    assert len(llm.requests) == 2
    assert "tools" in llm.requests[0] and not llm.requests[1].get("tools")
    assert "maximum number of steps" in llm.requests[1]["messages"][-1]["content"]
    assert [p["text"] for p in msgs[-1]["parts"] if p["type"] == "text"] == [
        "out of steps, stopping"
    ]


def test_a_question_deadline_answers_with_the_default(make_server: Any, llm: ScriptedLLM) -> None:
    server = make_server(roost={"wait": {"question": {"timeoutMs": 300, "default": "first"}}})
    question = {
        "questions": [
            {
                "question": "Which?",
                "header": "w",
                "options": [
                    {"label": "First", "description": "1"},
                    {"label": "Second", "description": "2"},
                ],
            }
        ]
    }
    llm.enqueue(tool_turn("question", question), text_turn("went with the default"))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("ask")).status_code == 204
    msgs = server.wait_idle(sid)
    part = next(p for m in msgs for p in m["parts"] if p["type"] == "tool")
    assert part["state"]["status"] == "completed"
    assert '"Which?"="First"' in part["state"]["output"]
    assert server.get("/question").json() == []


def test_a_permission_deadline_rejects(make_server: Any, llm: ScriptedLLM, project: Path) -> None:
    skill = project / ".opencode" / "skill" / "greet"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: greet\ndescription: d\n---\nHello.\n")
    server = make_server(
        permission={"skill": "ask"}, roost={"wait": {"permission": {"timeoutMs": 300}}}
    )
    llm.enqueue(tool_turn("skill", {"name": "greet"}), text_turn("no permission"))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    msgs = server.wait_idle(sid)
    part = next(p for m in msgs for p in m["parts"] if p["type"] == "tool")
    assert part["state"]["status"] == "error"
    assert wait_for(lambda: server.get("/permission").json() == [], what="list empty")


@pytest.mark.parametrize(
    ("file_name", "config", "named"),
    [
        ("opencode.json", {"permission": {"bash": {"rm *": "Deny"}}}, 'permission.bash["rm *"]'),
        ("roost.json", {"permission": "Allow"}, "permission"),
        (
            "opencode.json",
            {"agent": {"build": {"permission": {"edit": "never"}}}},
            "agent.build.permission.edit",
        ),
    ],
)
def test_serve_exits_naming_the_file_and_the_rule_of_a_malformed_permission(
    project: Path, tmp_path: Path, llm: ScriptedLLM, file_name: str, config: Any, named: str
) -> None:
    if file_name == "opencode.json":
        config = project_config(llm.base_url, **config)
    (project / file_name).write_text(json.dumps(config))
    done = subprocess.run(
        [sys.executable, "-m", "roost", "serve", "--port", "0", "--db", str(tmp_path / "x.db")],
        cwd=project,
        env={**os.environ, "XDG_CONFIG_HOME": str(project / ".xdg-config")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "listening on" not in done.stdout
    assert str(project / file_name) in done.stderr
    assert named in done.stderr


def test_every_valid_permission_form_is_accepted(make_server: Any, llm: ScriptedLLM) -> None:
    server = make_server(
        permission={"bash": {"*": "allow", "rm *": "ask"}, "webfetch": "deny"},
        agent={"build": {"permission": {"edit": "ask"}}, "plan": {"permission": "ask"}},
        roost={"permission": {"external_directory": {"/tmp/*": "allow", "*": "ask"}}},
    )
    agents = {a["name"]: a for a in server.get("/agent").json()}
    assert agents["build"]["permission"] == [
        {"permission": "edit", "pattern": "*", "action": "ask"}
    ]
    assert agents["plan"]["permission"][-1] == {"permission": "*", "pattern": "*", "action": "ask"}
    server.prompt(server.create_session()["id"], "hi")
    offered = {t["function"]["name"] for t in llm.requests[-1].get("tools", [])}
    assert "bash" in offered and "webfetch" not in offered


@pytest.mark.parametrize(("config", "written"), [({}, False), ({"permission": "allow"}, True)])
def test_a_config_allow_all_lifts_the_plan_agents_edit_deny_as_in_opencode(
    make_server: Any, llm: ScriptedLLM, config: dict[str, Any], written: bool
) -> None:
    srv = make_server(**config)
    target = srv.directory / "plan-wrote.txt"
    llm.enqueue(tool_turn("write", {"filePath": str(target), "content": "x"}), text_turn("ok"))
    sid = srv.create_session()["id"]
    srv.prompt(sid, "write it", agent="plan")
    offered = {t["function"]["name"] for t in llm.requests[0].get("tools", [])}
    assert ("write" in offered) is written
    assert target.exists() is written
