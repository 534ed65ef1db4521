"""Sub-agents: the ``task`` tool's turn, run in a child session of the calling one.

OpenCode 1.18.34's ``task`` tool creates (or, with ``task_id``, continues) a child session
whose ``parentID`` is the caller's, prompts it as the named sub-agent, waits for its turn and
returns its final text. The child is an ordinary session (listed, streamed, abortable); its
turn runs under the child's own lease, wherever the store schedules it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

import orjson

from roost.agent.catalog import Catalog
from roost.agent.tools.base import SubtaskResult, ToolError
from roost.engine.admission import Admitted, PromptInput
from roost.engine.outcomes import see_through
from roost.engine.runs import RunManager
from roost.errors import StorageUnavailable
from roost.store import queries
from roost.store.database import Database
from roost.store.queries import MessageRow


class SessionOps(Protocol):
    """What sub-agents need of ``SessionService``."""

    catalog: Catalog
    db: Database
    runs: RunManager

    async def create_session(
        self, *, parent_id: str | None = ..., title: str | None = ..., agent: str | None = ...
    ) -> dict[str, Any]: ...

    async def prompt_async(self, session_id: str, prompt: PromptInput) -> Admitted: ...

    async def list_messages(
        self, session_id: str, *, since: str | None = None
    ) -> list[MessageRow]: ...


async def last_reply(
    service: SessionOps, session_id: str, user_message_id: str
) -> MessageRow | None:
    """The newest assistant message answering ``user_message_id``, or None.

    Replies sort after their prompt (ids are minted in time order), so only the messages from
    the prompt on are read, however long the session; the whole session only when none of
    those answers it (a reply minted before a client's message id from a clock ahead).
    """
    for since in (user_message_id, None):
        rows = await service.list_messages(session_id, since=since)
        replies = [r for r in rows if orjson.loads(r.info).get("parentID") == user_message_id]
        if replies:
            return replies[-1]
    return None


async def run_subtask(
    service: SessionOps,
    *,
    parent_id: str,
    agent: str,
    prompt: str,
    description: str,
    task_id: str | None,
) -> SubtaskResult:
    """Run a sub-agent's turn in a child session and return its final text.

    A new child session is titled ``"<description> (@<agent> subagent)"``; ``task_id``
    continues an existing child of the same parent. If the calling turn is cancelled, the
    child's turn is aborted too (and its processes killed) before the cancellation goes on.

    Raises:
        ToolError: Unknown or non-sub-agent ``agent``, a bad ``task_id``, or the child's
            turn failed (its error is the message).
    """
    found = service.catalog.agents.get(agent)
    if found is None or found.mode == "primary":
        known = ", ".join(
            sorted(a.name for a in service.catalog.agents.values() if a.mode != "primary")
        )
        raise ToolError(f"Unknown sub-agent {agent!r}. Available sub-agents: {known}")
    if task_id:
        existing = await service.db.read(lambda c: queries.get_session(c, task_id))
        if existing is None or orjson.loads(existing).get("parentID") != parent_id:
            raise ToolError(f"task_id {task_id} is not a child session of this session")
        child_id = task_id
    else:
        child = await service.create_session(
            parent_id=parent_id, title=f"{description} (@{agent} subagent)", agent=agent
        )
        child_id = child["id"]
    admitted = await service.prompt_async(
        child_id, PromptInput(parts=[{"type": "text", "text": prompt}], agent=agent)
    )
    assert admitted.run_id is not None
    try:
        await service.runs.wait_run(admitted.run_id)
    except asyncio.CancelledError:
        # The child's turn is stopped either way; while the store refuses writes it records
        # its outcome itself later, and this cancellation goes on meanwhile.
        with contextlib.suppress(StorageUnavailable):
            await see_through(service.runs.abort(child_id))
        raise
    reply = await last_reply(service, child_id, admitted.message_id)
    info = orjson.loads(reply.info) if reply else {}
    if reply is None or "error" in info:
        error = (info.get("error") or {}).get("data", {}).get("message", "no answer")
        raise ToolError(f"The sub-agent failed (session {child_id}): {error}")
    text = "".join(
        orjson.loads(p).get("text", "")
        for p in reply.parts
        if orjson.loads(p).get("type") == "text"
    )
    return SubtaskResult(
        child_id,
        text,
        {"modelID": info.get("modelID", ""), "providerID": info.get("providerID", "")},
    )
