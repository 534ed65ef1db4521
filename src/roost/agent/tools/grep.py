"""``grep``: regex search of file contents through ripgrep (``.gitignore`` honoured)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult
from roost.agent.tools.paths import resolve_path
from roost.agent.tools.ripgrep import run_rg

MAX_MATCHES = 100
MAX_LINE_CHARS = 2000


class GrepParams(Params):
    pattern: str = Field(description="Regular expression to search for")
    path: str | None = Field(default=None, description="File or folder (default: project)")
    include: str | None = Field(default=None, description='Only files matching, e.g. "*.py"')


def _mtime(path: str) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def _group(out: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """``file:line:text`` lines → files (newest first) with their matches."""
    by_file: dict[str, list[tuple[str, str]]] = {}
    for line in out.splitlines():
        name, sep, rest = line.partition(":")
        number, sep2, text = rest.partition(":")
        if not sep or not sep2:
            continue
        by_file.setdefault(name, []).append((number, text))
    return sorted(by_file.items(), key=lambda item: _mtime(item[0]), reverse=True)


class GrepTool(Tool):
    """Searches file contents by regular expression."""

    name = "grep"
    description = (
        "Search file contents with a regular expression (ripgrep syntax). Returns matching "
        "lines with file paths and line numbers, newest files first, at most 100 matches. "
        "Narrow the search with path and include (a file glob such as *.py)."
    )
    Params = GrepParams
    read_only = True

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        target = await resolve_path(ctx, params.path or ".", kind="directory")
        args = [
            "-nH",
            "--no-heading",
            "--color",
            "never",
            "--no-require-git",
            "--hidden",
            "--glob",
            "!.git",
        ]
        if params.include:
            args += ["--glob", params.include]
        args += ["-e", params.pattern, str(target)]
        code, out, err = await run_rg(args, ctx.directory)
        if code == 1:
            return ToolResult(
                output="No files found",
                title=params.pattern,
                metadata={"matches": 0, "truncated": False},
            )
        if code != 0:
            raise ToolError(f"grep failed: {err.strip()}")
        groups = await anyio.to_thread.run_sync(_group, out)
        total = sum(len(matches) for _, matches in groups)
        lines = [f"Found {total} matches"]
        shown = 0
        for name, matches in groups:
            if shown >= MAX_MATCHES:
                break
            lines.append(f"\n{name}:")
            for number, text in matches[: MAX_MATCHES - shown]:
                lines.append(f"  Line {number}: {text[:MAX_LINE_CHARS]}")
                shown += 1
        if total > shown:
            lines.append(
                f"\n(Showing {shown} of {total} matches. Use a more specific pattern or path.)"
            )
        return ToolResult(
            output="\n".join(lines),
            title=params.pattern,
            metadata={"matches": total, "truncated": total > shown},
        )
