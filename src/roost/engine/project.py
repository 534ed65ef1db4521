"""The one project a server works in, as clients ask about it: its location, its directories
and the skills found for it.

A Roost server serves exactly one project directory (where ``roost serve`` runs). OpenCode
clients pass a ``directory`` or ``location[directory]`` with most requests to pick one of
several; Roost answers for its own project whatever they pass, as the session routes do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread

from roost.agent.tools.skill import Skill, discover_skills


def location(directory: str, project_id: str) -> dict[str, Any]:
    """OpenAPI ``LocationInfo``: ``{"directory", "project": {"id", "directory"}}``."""
    return {"directory": directory, "project": {"id": project_id, "directory": directory}}


def directories(directory: str, project_id: str, asked_id: str) -> list[dict[str, str]]:
    """OpenAPI ``ProjectDirectories`` of the project ``asked_id``.

    Roost knows one directory of one project and makes no copies or worktrees of it, so this
    is ``[{"directory"}]`` for its own project and ``[]`` for any other id (as OpenCode lists
    nothing for a project it never opened).
    """
    return [{"directory": directory}] if asked_id == project_id else []


async def skills(directory: Path, config_dir: Path) -> list[Skill]:
    """Every skill the ``skill`` tool can load, by name (the tool's own discovery: project
    ``.opencode/skill(s)/``, ``.claude/skills/`` and the config folder's ``skill(s)/``)."""
    found = await anyio.to_thread.run_sync(discover_skills, directory, config_dir)
    return [found[name] for name in sorted(found)]


def skill_to_wire(skill: Skill) -> dict[str, Any]:
    """``{"name", "description", "location", "content"}``: ``location`` is the ``SKILL.md``
    path, ``content`` its instructions without the front matter, as OpenCode serves them."""
    out: dict[str, Any] = {"name": skill.name, "location": str(skill.path), "content": skill.body}
    if skill.description:
        out["description"] = skill.description
    return out
