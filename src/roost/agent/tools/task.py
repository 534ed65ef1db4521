"""``task``: delegate work to a sub-agent running in a child session."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolResult


class TaskParams(Params):
    description: str = Field(description="A short (3-5 words) description of the task")
    prompt: str = Field(description="The full task for the sub-agent")
    subagent_type: str = Field(description="Which sub-agent to use (e.g. general, explore)")
    task_id: str | None = Field(default=None, description="Continue this earlier task's session")
    command: str | None = Field(default=None, description="The command that started it, if any")


class TaskTool(Tool):
    """Runs the sub-agent through ``ctx.run_subtask``; its final text is the output."""

    name = "task"
    description = (
        "Start a sub-agent in a child session to carry out a self-contained task, and get its "
        "final answer back. Give it everything it needs in the prompt: it does not see this "
        "conversation. Pass task_id to continue a child session started earlier."
    )
    Params = TaskParams

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """Return ``<task id="ses_…" state="completed">…</task>`` like OpenCode."""
        result = await ctx.run_subtask(
            agent=params.subagent_type,
            prompt=params.prompt,
            description=params.description,
            task_id=params.task_id,
        )
        output = (
            f'<task id="{result.session_id}" state="completed">\n'
            f"<task_result>\n{result.text}\n</task_result>\n</task>"
        )
        return ToolResult(
            output=output,
            title=params.description,
            metadata={
                "parentSessionId": ctx.session_id,
                "sessionId": result.session_id,
                "model": result.model,
            },
        )
