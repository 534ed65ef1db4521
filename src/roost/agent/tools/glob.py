"""``glob``: files whose path matches a pattern, newest first, found by ripgrep.

Patterns are ripgrep ``--glob`` patterns (gitignore syntax): one without a ``/`` matches a file
name at any depth (``*.py``), one with a ``/`` matches the path below the search folder
(``src/**/*.ts``); ``**`` crosses folders and ``{a,b}`` alternates. Which files are considered
(ignore files, dotfiles, ``.git``) is decided in ``ripgrep``, with one ripgrep rule to know: a
``--glob`` overrides ignore files, so a pattern that matches an ignored folder's own name
(``**/*`` matches ``node_modules``) lists that folder's files too, exactly as in OpenCode,
which runs the same command. Every match is stat'ed and the ``MAX_RESULTS`` most recently
modified are shown, newest first, as absolute paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult
from roost.agent.tools.paths import resolve_path
from roost.agent.tools.ripgrep import FILTER_ARGS, first_error, run_rg
from roost.agent.tools.write import project_root, relative

MAX_RESULTS = 100
"""Most paths one call shows."""


class GlobParams(Params):
    pattern: str = Field(description='Glob to match file paths against, e.g. "**/*.py"')
    path: str | None = Field(
        default=None,
        description="Folder to search in; omit it to search the project directory",
    )


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:  # deleted since ripgrep listed it, or a dangling symlink
        return 0


def _newest(root: Path, names: list[str]) -> list[Path]:
    """The ``MAX_RESULTS`` newest of ``names`` (relative to ``root``), ties by path (blocking)."""
    keyed = [(-_mtime_ns(root / name), name) for name in names]
    keyed.sort()
    return [root / name for _, name in keyed[:MAX_RESULTS]]


class GlobTool(Tool):
    """Finds files by path pattern, most recently modified first."""

    name = "glob"
    description = (
        'Find files by glob pattern, such as "**/*.py" or "src/**/*.{ts,tsx}". A pattern '
        "without a slash matches file names at any depth. Returns absolute paths, most recently "
        "modified first, at most 100. Files ignored by the repository's .gitignore are left "
        "out. To search inside files use grep."
    )
    Params = GlobParams
    read_only = True
    changes_files = False

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        folder = await resolve_path(ctx, params.path or ".", kind="directory")
        await ctx.ask_permission(
            "glob",
            [params.pattern],
            always=["*"],
            metadata={"pattern": params.pattern, "path": params.path},
        )
        if not await anyio.Path(folder).exists():
            raise ToolError(f"Directory not found: {folder}")
        if not await anyio.Path(folder).is_dir():
            raise ToolError(f"glob path must be a directory: {folder}")
        code, out, err = await run_rg(
            ["--files", "--null", f"--glob={params.pattern}", *FILTER_ARGS, "."], folder
        )
        names = [name.removeprefix("./") for name in out.split("\0") if name]
        if code == 2 and not names:
            raise ToolError(f"glob failed: {err.strip()}")
        shown = await anyio.to_thread.run_sync(_newest, folder, names)
        lines = [str(p) for p in shown] or ["No files found"]
        truncated = len(names) > len(shown)
        if truncated:
            lines += [
                "",
                f"(Showing the {len(shown)} most recently modified of {len(names)} files. "
                "Use a more specific path or pattern to see others.)",
            ]
        if code == 2:
            lines += ["", f"(Some paths could not be searched: {first_error(err)})"]
        return ToolResult(
            output="\n".join(lines),
            title=relative(await project_root(ctx), folder),
            metadata={"count": len(names), "truncated": truncated},
        )
