"""``todowrite``: the model keeps a session todo list (``todo.updated``, ``GET …/todo``)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolResult


class Todo(BaseModel):
    """One item (OpenAPI ``Todo``)."""

    content: str = Field(description="What to do, briefly")
    status: Literal["pending", "in_progress", "completed", "cancelled"] = Field(
        description="pending, in_progress, completed or cancelled"
    )
    priority: Literal["high", "medium", "low"] = Field(description="high, medium or low")


class TodoWriteParams(Params):
    todos: list[Todo] = Field(description="The whole updated todo list")


class TodoWriteTool(Tool):
    """Replaces the session's todo list; the engine stores it and emits ``todo.updated``."""

    name = "todowrite"
    changes_files = False
    description = (
        "Replace the session's todo list with the given items. Use it to plan multi-step work "
        "and to show progress: keep exactly one item in_progress while working, and mark items "
        "completed as soon as they are done. Send the whole list every time."
    )
    Params = TodoWriteParams

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """Store the list through ``ctx.update_todos``."""
        todos = [t.model_dump() for t in params.todos]
        await ctx.update_todos(todos)
        open_count = sum(1 for t in todos if t["status"] not in ("completed", "cancelled"))
        return ToolResult(
            output=json.dumps(todos, indent=2),
            title=f"{open_count} todos",
            metadata={"todos": todos},
        )
