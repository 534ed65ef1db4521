"""Every built-in tool by name, with OpenCode's names."""

from __future__ import annotations

from pathlib import Path

from roost.agent.tools.base import Tool
from roost.agent.tools.bash import BashTool
from roost.agent.tools.edit import EditTool
from roost.agent.tools.glob import GlobTool
from roost.agent.tools.grep import GrepTool
from roost.agent.tools.question import QuestionTool
from roost.agent.tools.read import ReadTool
from roost.agent.tools.skill import SkillTool
from roost.agent.tools.task import TaskTool
from roost.agent.tools.todowrite import TodoWriteTool
from roost.agent.tools.webfetch import WebFetchTool
from roost.agent.tools.write import WriteTool


def builtin_tools(config_dir: Path) -> dict[str, Tool]:
    """One instance of each built-in tool (tools keep no per-call state).

    Args:
        config_dir: The global OpenCode config folder (skills live below it).
    """
    tools: list[Tool] = [
        BashTool(),
        ReadTool(),
        WriteTool(),
        EditTool(),
        GlobTool(),
        GrepTool(),
        TodoWriteTool(),
        QuestionTool(),
        TaskTool(),
        SkillTool(config_dir),
        WebFetchTool(),
    ]
    return {t.name: t for t in tools}
