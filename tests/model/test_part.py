"""``close_open_tool``: the one rule for closing a tool call that a turn left open."""

from __future__ import annotations

from typing import Any

import pytest

from roost.model.part import close_open_tool, is_open_tool
from tests.support.openapi import validate


def _tool(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "prt_1",
        "sessionID": "ses_1",
        "messageID": "msg_1",
        "type": "tool",
        "callID": "call_1",
        "tool": "bash",
        "state": state,
    }


RUNNING = {
    "status": "running",
    "input": {"command": "sleep 9"},
    "title": "sleep 9",
    "metadata": {"output": "so far"},
    "time": {"start": 100},
}
PENDING = {"status": "pending", "input": {}, "raw": ""}


def test_a_running_call_becomes_an_error_keeping_input_start_and_streamed_output() -> None:
    part = _tool(RUNNING)
    closed = close_open_tool(part, "aborted", 250)
    assert closed is not None
    assert closed["state"] == {
        "status": "error",
        "input": {"command": "sleep 9"},
        "error": "aborted",
        "metadata": {"output": "so far"},
        "time": {"start": 100, "end": 250},
    }
    assert {k: v for k, v in closed.items() if k != "state"} == {
        k: v for k, v in part.items() if k != "state"
    }
    assert part["state"] is RUNNING  # the given part is not changed
    validate(closed, "ToolPart")


def test_a_pending_call_starts_and_ends_when_it_is_closed() -> None:
    closed = close_open_tool(_tool(PENDING), "interrupted: server restarted", 300)
    assert closed is not None
    state = closed["state"]
    assert state["status"] == "error"
    assert state["time"] == {"start": 300, "end": 300}
    assert "metadata" not in state
    validate(closed, "ToolPart")


@pytest.mark.parametrize(
    "part",
    [
        _tool({**RUNNING, "status": "completed", "output": "", "time": {"start": 1, "end": 2}}),
        _tool({"status": "error", "input": {}, "error": "x", "time": {"start": 1, "end": 2}}),
        {"id": "prt_2", "type": "text", "text": "hi", "state": {"status": "running"}},
    ],
)
def test_anything_but_an_open_tool_call_is_left_alone(part: dict[str, Any]) -> None:
    assert not is_open_tool(part)
    assert close_open_tool(part, "aborted", 1) is None
