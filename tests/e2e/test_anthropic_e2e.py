"""A real server on an ``@ai-sdk/anthropic`` provider: prompts go out as Anthropic Messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.scripted_llm import AUX_MODEL, Reasoning, ScriptedLLM, Text, ToolCall, Turn
from tests.support.server import RoostServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def claude_server(tmp_path: Path, llm: ScriptedLLM) -> Iterator[RoostServer]:
    """A server whose only provider is ``claude``, an Anthropic provider on the scripted LLM."""
    directory = tmp_path / "claude-project"
    directory.mkdir()
    config = {
        "model": "claude/claude-test",
        "small_model": f"claude/{AUX_MODEL}",  # titles: answered by the scripted LLM itself
        "provider": {
            "claude": {
                "npm": "@ai-sdk/anthropic",
                # OpenCode's convention: baseURL ends in /v1 (the provider also takes it bare).
                "options": {"baseURL": llm.base_url, "apiKey": "k"},
                "models": {"claude-test": {}, AUX_MODEL: {}},
            }
        },
    }
    (directory / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(directory, tmp_path / "roost.db").start()
    try:
        yield srv
    finally:
        srv.close()


def test_prompt_with_a_tool_call_round_trips_through_anthropic_messages(
    claude_server: RoostServer, llm: ScriptedLLM
) -> None:
    todos = [
        {"content": "write tests", "status": "in_progress", "priority": "high"},
        {"content": "ship", "status": "pending", "priority": "low"},
    ]
    llm.enqueue(
        Turn([Reasoning("plan first"), Text("Planning."), ToolCall("todowrite", {"todos": todos})]),
        Turn([Text("planned")], usage=(40, 2)),
    )
    sid = claude_server.create_session()["id"]

    messages = claude_server.prompt(sid, "plan it")

    final = messages[-1]["info"]
    assert (final["providerID"], final["modelID"]) == ("claude", "claude-test")
    assert "error" not in final
    assert final["finish"] == "stop"
    assert final["tokens"]["input"] == 40
    parts = [p for m in messages for p in m["parts"]]
    assert [p["text"] for p in parts if p["type"] == "reasoning"] == ["plan first"]
    assert [p["text"] for p in parts if p["type"] == "text"] == ["plan it", "Planning.", "planned"]
    [tool] = [p for p in parts if p["type"] == "tool"]
    assert tool["tool"] == "todowrite"
    assert tool["callID"].startswith("toolu_")
    assert tool["state"]["status"] == "completed"
    assert tool["state"]["input"] == {"todos": todos}
    assert claude_server.get(f"/session/{sid}/todo").json() == todos

    first, second = llm.wait_for_requests(2)
    assert first["model"] == "claude-test"
    assert first["stream"] is True
    assert isinstance(first["max_tokens"], int)
    assert isinstance(first["system"], str) and first["system"]
    assert all(m["role"] != "system" for m in first["messages"])
    assert first["messages"][-1] == {
        "role": "user",
        "content": [{"type": "text", "text": "plan it"}],
    }
    offered = {t["name"]: t for t in first["tools"]}
    assert offered["todowrite"]["input_schema"]["type"] == "object"
    assert "todos" in offered["todowrite"]["input_schema"]["properties"]

    *_, asked, answered = second["messages"]
    assert asked["role"] == "assistant"
    assert asked["content"] == [
        {"type": "text", "text": "Planning."},
        {"type": "tool_use", "id": tool["callID"], "name": "todowrite", "input": {"todos": todos}},
    ]
    assert answered["role"] == "user"
    [result] = answered["content"]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == tool["callID"]
    assert "write tests" in result["content"]
