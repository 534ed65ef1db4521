"""A command the user runs in a session (the TUI's ``!cmd``, ``POST /session/{id}/shell``).

As OpenCode 1.18.34 does it, the command is not a model turn: it becomes one ``bash`` tool part
of an assistant message, run by the same ``BashTool`` as the model's calls (its own process
group, recorded for recovery, killed on abort), and its output is stored. The model reads it
with the next prompt. The part sits in a step of its own (step-start, tool, step-finish with no
tokens), so the files the command changes are snapshotted and ``/undo`` restores them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from roost.agent.loop import TurnSink
from roost.agent.providers.base import ToolCallRequest, Usage
from roost.agent.tools.base import Tool, ToolError
from roost.ids import new_call_id

log = logging.getLogger(__name__)

USER_SHELL_NOTE = "The following tool was executed by the user"
"""The synthetic text of the user message a shell command is stored under (OpenCode's)."""


async def run_user_call(tool: Tool, arguments: dict[str, Any], sink: TurnSink) -> None:
    """Make one call of ``tool`` for the user, as a completed (or ``error``) tool part through
    ``sink`` in a step of its own: ``bash`` for a shell command, ``task`` for a command run
    as a sub-agent task.

    Cancellation (abort) propagates after the tool has cleaned up (killed its process group,
    aborted its child session).
    """
    call = ToolCallRequest(call_id=new_call_id(), name=tool.name, arguments=arguments)
    await sink.step_started()
    await sink.tool_pending(call)
    ctx = sink.tool_context(call)
    await sink.tool_running(call)
    try:
        result = await tool.run(tool.parse(call.arguments), ctx)
    except ToolError as exc:
        await sink.tool_failed(call, exc.message)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("shell command failed")
        await sink.tool_failed(call, f"{type(exc).__name__}: {exc}")
    else:
        await sink.tool_completed(call, result)
    await sink.step_finished("stop", Usage())
