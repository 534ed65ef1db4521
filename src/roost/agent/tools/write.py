"""``write``: create or overwrite a file (asks the ``edit`` permission with a diff)."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolResult
from roost.agent.tools.paths import resolve_path


class WriteParams(Params):
    filePath: str = Field(description="Absolute path, or relative to the project directory")
    content: str = Field(description="The complete new content of the file")


def unified_diff(path: str, old: str, new: str) -> str:
    """A unified diff between two versions of a file."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=path,
            tofile=path,
        )
    )


def relative(ctx: ToolContext, path: Path) -> str:
    """``path`` relative to the project when inside it, else absolute."""
    try:
        return str(path.relative_to(ctx.directory.resolve()))
    except ValueError:
        return str(path)


def _existing(path: Path) -> str | None:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def _write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


class WriteTool(Tool):
    """Writes a whole file."""

    name = "write"
    description = (
        "Write a file with the given content, creating parent folders as needed and replacing "
        "the file if it exists. Prefer edit for changing part of an existing file; read a file "
        "before overwriting it."
    )
    Params = WriteParams

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        path = await resolve_path(ctx, params.filePath)
        old = await anyio.to_thread.run_sync(_existing, path)
        name = relative(ctx, path)
        diff = unified_diff(name, old or "", params.content)
        await ctx.ask_permission("edit", [name], metadata={"filepath": str(path), "diff": diff})
        await anyio.to_thread.run_sync(_write, path, params.content)
        verb = "Overwrote" if old is not None else "Created"
        return ToolResult(
            output=f"{verb} {path} ({len(params.content.encode())} bytes).",
            title=name,
            metadata={"filepath": str(path), "exists": old is not None, "diff": diff},
        )
