"""``glob``: files matching a pattern, through ripgrep (so ``.gitignore`` is honoured)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult
from roost.agent.tools.paths import resolve_path
from roost.agent.tools.ripgrep import run_rg

MAX_RESULTS = 100


class GlobParams(Params):
    pattern: str = Field(description='Glob pattern, e.g. "**/*.py" or "src/**/test_*.ts"')
    path: str | None = Field(default=None, description="Folder to search (default: project)")


def _by_mtime(root: Path, names: list[str]) -> list[Path]:
    paths = [root / n for n in names]

    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    return sorted(paths, key=mtime, reverse=True)


class GlobTool(Tool):
    """Finds files by name pattern, newest first."""

    name = "glob"
    description = (
        "Find files by glob pattern (like **/*.py), newest first, at most 100. Files ignored "
        "by .gitignore are left out. Use grep to search file contents."
    )
    Params = GlobParams
    read_only = True

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        root = await resolve_path(ctx, params.path or ".", kind="directory")
        if not await anyio.to_thread.run_sync(root.is_dir):
            raise ToolError(f"Not a directory: {root}")
        # --no-require-git: honour .gitignore files even outside a git repository.
        code, out, err = await run_rg(
            [
                "--files",
                "--no-require-git",
                "--hidden",
                "--glob",
                "!.git",
                "--glob",
                params.pattern,
            ],
            root,
        )
        if code not in (0, 1):
            raise ToolError(f"glob failed: {err.strip()}")
        found = await anyio.to_thread.run_sync(_by_mtime, root, out.splitlines())
        shown = found[:MAX_RESULTS]
        lines = [str(p) for p in shown] or ["No files found"]
        if len(found) > MAX_RESULTS:
            lines.append(
                f"\n(Showing {MAX_RESULTS} of {len(found)} files. Use a more specific "
                "pattern or path.)"
            )
        return ToolResult(
            output="\n".join(lines),
            title=params.pattern,
            metadata={"count": len(found), "truncated": len(found) > MAX_RESULTS},
        )
