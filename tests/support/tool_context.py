"""A ``ToolContext`` for running tools directly in tests, against real files and processes.

It is not a mock of the engine: it implements the context plainly (permissions from a dict of
``permission -> "allow" | "deny"``, questions answered from a queue, updates recorded), so tool
tests exercise the tool's own behaviour. The engine's context is tested end to end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.agent.tools.base import PermissionRejected, SubtaskResult, ToolError


@dataclass
class LocalToolContext:
    directory: Path
    output_dir: Path
    session_id: str = "ses_test"
    message_id: str = "msg_test"
    call_id: str = "call_test"
    agent: str = "build"
    rules: dict[str, str] = field(default_factory=dict)
    """``permission -> "allow" | "deny"``; missing permissions are allowed."""
    answers: list[list[list[str]]] = field(default_factory=list)
    subtask_results: list[SubtaskResult | ToolError] = field(default_factory=list)
    asked: list[tuple[str, list[str], dict[str, Any]]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    processes: set[int] = field(default_factory=set)
    questions: list[list[dict[str, Any]]] = field(default_factory=list)
    subtasks: list[dict[str, Any]] = field(default_factory=list)
    todos: list[dict[str, Any]] = field(default_factory=list)

    process_owner: str = "test-owner"

    @property
    def output_path(self) -> Path:
        return self.output_dir / f"{self.call_id}.txt"

    async def ask_permission(
        self,
        permission: str,
        patterns: list[str],
        *,
        always: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.asked.append((permission, list(patterns), dict(metadata or {})))
        if self.rules.get(permission, "allow") == "deny":
            raise PermissionRejected(f"permission {permission} denied for {patterns}")

    async def update(self, *, title: str | None = None, metadata: dict[str, Any]) -> None:
        self.updates.append({"title": title, "metadata": dict(metadata)})

    async def update_todos(self, todos: list[dict[str, Any]]) -> None:
        self.todos = list(todos)

    async def ask_question(self, questions: list[dict[str, Any]]) -> list[list[str]]:
        self.questions.append(questions)
        if not self.answers:
            raise ToolError("the user dismissed the question")
        return self.answers.pop(0)

    async def run_subtask(
        self, *, agent: str, prompt: str, description: str, task_id: str | None
    ) -> SubtaskResult:
        self.subtasks.append(
            {"agent": agent, "prompt": prompt, "description": description, "task_id": task_id}
        )
        result = self.subtask_results.pop(0)
        if isinstance(result, ToolError):
            raise result
        return result

    async def record_process(self, pgid: int) -> None:
        self.processes.add(pgid)

    async def forget_process(self, pgid: int) -> None:
        self.processes.discard(pgid)
