"""``skill``: load a skill's instructions from a ``SKILL.md`` file.

Skills are folders with a ``SKILL.md`` (YAML-ish front matter with ``name`` and
``description``, then Markdown instructions) under ``.opencode/skill/`` or ``.opencode/skills/``
in the project, ``~/.config/opencode/skill(s)/``, and ``.claude/skills/``, as in OpenCode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n?", re.S)


@dataclass(frozen=True)
class Skill:
    """One skill: where it lives and what it says."""

    name: str
    description: str
    path: Path
    body: str


def skill_dirs(directory: Path, config_dir: Path) -> list[Path]:
    """Folders that may hold skills, lowest precedence first."""
    return [
        config_dir / "skill",
        config_dir / "skills",
        directory / ".claude" / "skills",
        directory / ".opencode" / "skill",
        directory / ".opencode" / "skills",
    ]


def parse_skill(path: Path) -> Skill | None:
    """Read one ``SKILL.md``; None when it has no ``name``."""
    text = path.read_text(encoding="utf-8", errors="replace")
    meta: dict[str, str] = {}
    match = _FRONT_MATTER.match(text)
    body = text
    if match:
        body = text[match.end() :]
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep:
                meta[key.strip()] = value.strip().strip("\"'")
    name = meta.get("name") or path.parent.name
    if not name:
        return None
    return Skill(name, meta.get("description", ""), path, body.strip())


def discover_skills(directory: Path, config_dir: Path) -> dict[str, Skill]:
    """Every skill by name; later folders override earlier ones (blocking I/O)."""
    found: dict[str, Skill] = {}
    for folder in skill_dirs(directory, config_dir):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*/SKILL.md")):
            skill = parse_skill(path)
            if skill is not None:
                found[skill.name] = skill
    return found


class SkillParams(Params):
    name: str = Field(description="The skill's name, from the list of available skills")


class SkillTool(Tool):
    """Returns a skill's instructions for the model to follow."""

    name = "skill"
    description = (
        "Load a skill: a set of instructions for a specific kind of task, kept in the project "
        "or the user's config. Call it with the skill's name when a task matches one of the "
        "available skills, then follow what it says."
    )
    Params = SkillParams
    read_only = True
    changes_files = False

    def __init__(self, config_dir: Path) -> None:
        self._config_dir = config_dir

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """Find the skill by name and return its body."""
        skills = await anyio.to_thread.run_sync(discover_skills, ctx.directory, self._config_dir)
        skill = skills.get(params.name)
        if skill is None:
            known = ", ".join(sorted(skills)) or "none"
            raise ToolError(f"Skill {params.name!r} not found. Available skills: {known}")
        await ctx.ask_permission("skill", [skill.name])
        output = (
            f"## Skill: {skill.name}\n\n**Base directory**: {skill.path.parent}\n\n{skill.body}"
        )
        return ToolResult(
            output=output,
            title=f"Loaded skill {skill.name}",
            metadata={"name": skill.name, "dir": str(skill.path.parent)},
        )
