"""Session titles generated from the first prompt, in the background, as OpenCode's title agent
does; a failure keeps the placeholder and never fails the turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roost.engine.titles import clean_title, is_placeholder
from tests.support.scripted_llm import AUX_MODEL, ScriptedLLM, text_turn
from tests.support.server import RoostServer, project_config
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def test_the_first_prompt_titles_the_session_with_the_small_model(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.aux_title = '"Fix the login redirect loop."'
    llm.enqueue(text_turn("on it"), text_turn("again"))
    sid = server.create_session()["id"]
    assert is_placeholder(server.get(f"/session/{sid}").json()["title"])
    server.prompt(sid, "the login page redirects forever, please fix it")

    title = wait_for(
        lambda: (
            (t := server.get(f"/session/{sid}").json()["title"]) != ""
            and not is_placeholder(t)
            and t
        ),
        what="a generated title",
    )
    assert title == "Fix the login redirect loop."
    [asked] = llm.aux_requests
    assert asked["model"] == AUX_MODEL
    assert "the login page redirects forever" in asked["messages"][-1]["content"]
    assert [s["title"] for s in server.get("/session").json()] == [title]

    server.prompt(sid, "and the logout page too")
    assert len(llm.aux_requests) == 1, "only the first prompt asks for a title"


def test_named_and_child_sessions_keep_their_titles(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(text_turn("a"), text_turn("b"))
    named = server.create_session(title="My own title")["id"]
    parent = server.create_session()["id"]
    child = server.create_session(parentID=parent)["id"]
    server.prompt(named, "hello")
    server.prompt(child, "hello")
    assert llm.aux_requests == []
    assert server.get(f"/session/{named}").json()["title"] == "My own title"
    assert is_placeholder(server.get(f"/session/{child}").json()["title"])


def test_a_failing_title_model_keeps_the_placeholder_and_the_turn_succeeds(
    project: Path, llm: ScriptedLLM, tmp_path: Path
) -> None:
    config = project_config(llm.base_url, small_model="dead/small")
    config["provider"]["dead"] = {
        "npm": "@ai-sdk/openai-compatible",
        "options": {"baseURL": "http://127.0.0.1:9/v1", "apiKey": "x"},
        "models": {"small": {}},
    }
    (project / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(project, tmp_path / "t.db").start()
    try:
        llm.enqueue(text_turn("answered"))
        sid = srv.create_session()["id"]
        messages = srv.prompt(sid, "hello there")
        assert "error" not in messages[-1]["info"]
        wait_for(
            lambda: any("no title for" in line for line in srv.log_lines),
            what="the title failure to be logged",
        )
        assert is_placeholder(srv.get(f"/session/{sid}").json()["title"])
    finally:
        srv.close()


@pytest.mark.parametrize(
    ("answer", "title"),
    [
        ("Fix login", "Fix login"),
        ('"Quoted title"\n', "Quoted title"),
        ("<think>hmm</think>\n\nTitle: Plan the release", "Plan the release"),
        ("  \n", ""),
        ("x" * 300, "x" * 100),
    ],
)
def test_clean_title(answer: str, title: str) -> None:
    assert clean_title(answer) == title
