"""The engine's ``ToolContext``: what a running tool call may ask for, made durable.

Permission checks evaluate the run's rules; an ``ask`` becomes a durable permission request
(``engine/requests.py``) and the session's status says it is waiting. "always" approvals are
stored as session rules (``session.updated``), so they survive restarts. Questions work the same
way. Progress updates go to the running tool part; sub-agents run through ``SubtaskRunner``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.agent.providers.base import ToolCallRequest
from roost.agent.tools.base import PermissionRejected, SubtaskResult, ToolError
from roost.engine.permissions import Rule, evaluate
from roost.engine.requests import RequestBroker, RequestClosed
from roost.engine.turn import TurnWriter
from roost.model import event as ev
from roost.store import leases
from roost.store.event_log import Tx


@dataclass(frozen=True)
class WaitPolicy:
    """Deadlines for waits on the user (``roost.json`` ``wait``); None waits forever.

    Attributes:
        question_default: ``"first"`` answers each question with its first option when the
            deadline passes; ``"reject"`` fails the call.
    """

    permission_s: float | None = None
    question_s: float | None = None
    question_default: str = "reject"


@dataclass
class RunScope:
    """What every tool call of one run shares."""

    session_id: str
    agent: str
    directory: Path
    output_dir: Path
    rules: list[Rule]
    broker: RequestBroker
    writer: TurnWriter
    set_status: Callable[[dict[str, Any]], Awaitable[None]]
    approve: Callable[[list[Rule]], Awaitable[None]]
    run_subtask: Callable[..., Awaitable[SubtaskResult]]
    waits: WaitPolicy = field(default_factory=WaitPolicy)
    owner: str = ""
    """The server's owner id (``engine/owner.py``), tagged onto tool processes."""
    record_process: Callable[[int, str], Awaitable[None]] | None = None
    forget_process: Callable[[int], Awaitable[None]] | None = None


class EngineToolContext:
    """A ``ToolContext`` for one call (see module docstring)."""

    def __init__(self, scope: RunScope, call: ToolCallRequest) -> None:
        self._scope = scope
        self._call = call
        self._message_id = scope.writer.message_id

    @property
    def session_id(self) -> str:
        return self._scope.session_id

    @property
    def message_id(self) -> str:
        return self._message_id

    @property
    def call_id(self) -> str:
        return self._call.call_id

    @property
    def agent(self) -> str:
        return self._scope.agent

    @property
    def directory(self) -> Path:
        return self._scope.directory

    @property
    def output_path(self) -> Path:
        part_id = self._scope.writer.tools[self.call_id]["id"]
        return self._scope.output_dir / f"{part_id}.txt"

    @property
    def process_owner(self) -> str:
        return self._scope.owner

    async def ask_permission(
        self,
        permission: str,
        patterns: list[str],
        *,
        always: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """See ``ToolContext.ask_permission``."""
        action = evaluate(self._scope.rules, permission, patterns)
        if action == "allow":
            return
        if action == "deny":
            raise PermissionRejected(
                f"Permission {permission!r} is denied by the configuration for "
                f"{', '.join(patterns)}. Do not retry; choose another approach."
            )
        payload = {
            "sessionID": self.session_id,
            "permission": permission,
            "patterns": patterns,
            "metadata": metadata or {},
            "always": always or patterns,
            "tool": {"messageID": self.message_id, "callID": self.call_id},
        }
        await self._scope.set_status({"type": "busy", "reason": "permission"})
        try:
            reply = await self._scope.broker.ask(
                "permission",
                payload,
                deadline_s=self._scope.waits.permission_s,
                default="reject",
                fence=self._fence,
            )
        except RequestClosed as exc:
            raise PermissionRejected(f"The permission request was closed: {exc.reason}") from exc
        finally:
            await asyncio.shield(self._scope.set_status({"type": "busy", "reason": "running"}))
        if reply.value == "reject":
            raise PermissionRejected(
                f"The user rejected permission {permission!r} for {', '.join(patterns)}.",
                ends_turn=True,
            )
        if reply.value == "always":
            approved = [
                Rule(permission=permission, pattern=p, action="allow") for p in (always or patterns)
            ]
            self._scope.rules.extend(approved)
            await self._scope.approve(approved)

    def _fence(self, tx: Tx) -> None:
        """In a write made for this run: its lease must still hold (``leases.check``)."""
        leases.check(tx.conn, self.session_id, self._scope.writer.generation)

    async def update(self, *, title: str | None = None, metadata: dict[str, Any]) -> None:
        """See ``ToolContext.update``."""
        await self._scope.writer.tool_progress(self.call_id, title=title, metadata=metadata)

    async def update_todos(self, todos: list[dict[str, Any]]) -> None:
        """See ``ToolContext.update_todos``."""
        await self._scope.writer.append(
            ev.TODO_UPDATED, {"sessionID": self.session_id, "todos": todos}
        )

    async def ask_question(self, questions: list[dict[str, Any]]) -> list[list[str]]:
        """See ``ToolContext.ask_question``."""
        payload = {
            "sessionID": self.session_id,
            "questions": questions,
            "tool": {"messageID": self.message_id, "callID": self.call_id},
        }
        waits = self._scope.waits
        default = None
        if waits.question_default == "first":
            default = [[q["options"][0]["label"]] if q.get("options") else [] for q in questions]
        await self._scope.set_status({"type": "busy", "reason": "question"})
        try:
            reply = await self._scope.broker.ask(
                "question", payload, deadline_s=waits.question_s, default=default, fence=self._fence
            )
        except RequestClosed as exc:
            raise ToolError(f"The question was closed without an answer: {exc.reason}") from exc
        finally:
            await asyncio.shield(self._scope.set_status({"type": "busy", "reason": "running"}))
        if reply.value is None:
            raise ToolError("The user dismissed the question.", ends_turn=True)
        return [list(a) for a in reply.value]

    async def run_subtask(
        self, *, agent: str, prompt: str, description: str, task_id: str | None
    ) -> SubtaskResult:
        """See ``ToolContext.run_subtask``."""
        return await self._scope.run_subtask(
            parent_id=self.session_id,
            agent=agent,
            prompt=prompt,
            description=description,
            task_id=task_id,
            call_id=self.call_id,
        )

    async def record_process(self, pgid: int) -> None:
        """See ``ToolContext.record_process``: stored, so recovery can kill it."""
        if self._scope.record_process is not None:
            await self._scope.record_process(pgid, self.call_id)

    async def forget_process(self, pgid: int) -> None:
        """See ``ToolContext.forget_process``."""
        if self._scope.forget_process is not None:
            await asyncio.shield(self._scope.forget_process(pgid))
