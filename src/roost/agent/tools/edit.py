"""``edit``: exact string replacement in a file (asks the ``edit`` permission with a diff)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult
from roost.agent.tools.paths import resolve_path
from roost.agent.tools.write import relative, unified_diff


class EditParams(Params):
    filePath: str = Field(description="Absolute path, or relative to the project directory")
    oldString: str = Field(description="The exact text to replace")
    newString: str = Field(description="The text to put in its place")
    replaceAll: bool | None = Field(default=None, description="Replace every occurrence")


def _load(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _store(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def replace(content: str, old: str, new: str, replace_all: bool) -> str:
    """The edited content.

    Raises:
        ToolError: ``old`` is missing, or found more than once without ``replace_all``.
    """
    count = content.count(old)
    if count == 0:
        raise ToolError(
            "oldString was not found in the file. It must match exactly, including whitespace "
            "and indentation; read the file again and copy the text."
        )
    if count > 1 and not replace_all:
        raise ToolError(
            f"oldString was found {count} times. Include more surrounding lines to make it "
            "unique, or set replaceAll to replace every occurrence."
        )
    return content.replace(old, new) if replace_all else content.replace(old, new, 1)


class EditTool(Tool):
    """Replaces exact text in a file."""

    name = "edit"
    description = (
        "Replace exact text in a file: oldString must match the file's content exactly "
        "(whitespace and indentation included) and be unique unless replaceAll is set. "
        "An empty oldString creates the file with newString. Read the file first."
    )
    Params = EditParams

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        if params.oldString == params.newString:
            raise ToolError("oldString and newString are the same; there is nothing to change.")
        path = await resolve_path(ctx, params.filePath)
        old_content = await anyio.to_thread.run_sync(_load, path)
        if old_content is None:
            if params.oldString != "":
                raise ToolError(f"File not found: {path}")
            new_content = params.newString
        elif params.oldString == "":
            raise ToolError("oldString is empty but the file exists; use write to replace it.")
        else:
            new_content = replace(
                old_content, params.oldString, params.newString, bool(params.replaceAll)
            )
        name = relative(ctx, path)
        diff = unified_diff(name, old_content or "", new_content)
        await ctx.ask_permission("edit", [name], metadata={"filepath": str(path), "diff": diff})
        await anyio.to_thread.run_sync(_store, path, new_content)
        added = sum(
            1 for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")
        )
        removed = sum(
            1 for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")
        )
        return ToolResult(
            output=f"Edited {path}.",
            title=name,
            metadata={
                "filepath": str(path),
                "diff": diff,
                "additions": added,
                "deletions": removed,
            },
        )
