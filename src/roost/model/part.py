"""Tool parts and their states, typed, and the one rule for closing a tool call left open.

Shapes: OpenCode 1.18.34's ``ToolPart`` and ``ToolState*`` schemas (``ToolStatePending``
``{status, input, raw}``, ``ToolStateRunning`` ``{status, input, title?, metadata?, time}``,
``ToolStateCompleted`` ``{status, input, output, title, metadata, time, attachments?}``,
``ToolStateError`` ``{status, input, error, metadata?, time}``); times are Unix epoch ms.

A tool call is *open* while its state is ``pending`` or ``running``. Whoever ends a turn
without the call's result (abort, a lost lease, a crash found by recovery, a fork of a
session mid-turn) closes it the same way, with ``close_open_tool``: it becomes ``error`` with
the given text, keeps its input, its start time and what it had streamed (``metadata``), and
ends now. Nothing else writes a tool state by hand for that.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, NotRequired, TypedDict, TypeGuard

ToolStatus = Literal["pending", "running", "completed", "error"]
OPEN_STATUSES: Final = frozenset({"pending", "running"})


class ToolTime(TypedDict):
    """When the call started and (once terminal) ended, epoch ms."""

    start: int
    end: NotRequired[int]


class ToolStatePending(TypedDict):
    status: Literal["pending"]
    input: dict[str, Any]
    raw: str


class ToolStateRunning(TypedDict):
    status: Literal["running"]
    input: dict[str, Any]
    title: NotRequired[str]
    metadata: NotRequired[dict[str, Any]]
    time: ToolTime


class ToolStateCompleted(TypedDict):
    status: Literal["completed"]
    input: dict[str, Any]
    output: str
    title: str
    metadata: dict[str, Any]
    time: ToolTime
    attachments: NotRequired[list[dict[str, Any]]]


class ToolStateError(TypedDict):
    status: Literal["error"]
    input: dict[str, Any]
    error: str
    metadata: NotRequired[dict[str, Any]]
    time: ToolTime


ToolState = ToolStatePending | ToolStateRunning | ToolStateCompleted | ToolStateError


class ToolPart(TypedDict):
    """A ``ToolPart``: one tool call of an assistant message."""

    id: str
    sessionID: str
    messageID: str
    type: Literal["tool"]
    callID: str
    tool: str
    state: ToolState
    metadata: NotRequired[dict[str, Any]]


def is_open_tool(part: Mapping[str, Any]) -> TypeGuard[ToolPart]:
    """Whether ``part`` (any wire part) is a tool call still ``pending`` or ``running``."""
    if part.get("type") != "tool":
        return False
    state = part.get("state")
    return isinstance(state, Mapping) and state.get("status") in OPEN_STATUSES


def close_open_tool(part: Mapping[str, Any], error: str, end_ms: int) -> ToolPart | None:
    """``part`` with its open tool call closed as ``error``, or None when it is not an open
    tool call (then nothing needs closing).

    Args:
        part: A wire part (a dict parsed from the store, or the turn's own).
        error: The ``ToolStateError.error`` text, e.g. ``"aborted"`` or ``"interrupted: …"``.
        end_ms: When the call ended, epoch ms; a call that never started (``pending``)
            starts then too.

    Returns:
        A new part dict (``part`` itself is not changed) whose ``state`` is
        ``{status: "error", input, error, time: {start, end}}`` plus ``metadata`` when the
        call had streamed any.
    """
    if not is_open_tool(part):
        return None
    state: Mapping[str, Any] = part["state"]
    closed: ToolStateError = {
        "status": "error",
        "input": dict(state.get("input") or {}),
        "error": error,
        "time": {"start": (state.get("time") or {}).get("start", end_ms), "end": end_ms},
    }
    if state.get("metadata"):
        closed["metadata"] = state["metadata"]
    done: ToolPart = {**part, "state": closed}
    return done
