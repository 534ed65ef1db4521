"""``grep``: lines matching a regular expression, grouped by file, found by ripgrep.

The pattern is ripgrep's regex syntax (Rust ``regex``). Which files are searched (ignore
files, dotfiles, ``.git``) is decided in ``ripgrep``; binary files are skipped. Files are listed
most recently modified first, each with its matching lines in order, ``MAX_MATCHES`` lines in
all. ripgrep's exit 1 (nothing matched) is the answer "No files found"; its exit 2 with no
matches (an invalid regex, an unreadable path) is an error carrying its message, while exit 2
with matches is a partial result, shown with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import (
    MAX_OUTPUT_BYTES,
    Params,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
)
from roost.agent.tools.paths import locate, resolve_path
from roost.agent.tools.ripgrep import FILTER_ARGS, first_error, run_rg
from roost.agent.tools.write import project_root

MAX_MATCHES = 100
"""Most matching lines one call shows."""
MAX_LINE_CHARS = 2000
"""Longer matching lines are cut (by ripgrep, to this many bytes) with a note."""

_NOTE_BYTES = 512
"""Output bytes kept free for the truncation notes."""

_Matches = list[tuple[str, list[tuple[int, str]]]]


class GrepParams(Params):
    pattern: str = Field(description="Regular expression to search file contents for")
    path: str | None = Field(
        default=None, description="File or folder to search; omit it to search the project"
    )
    include: str | None = Field(
        default=None, description='Only search files matching this glob, e.g. "*.py"'
    )


def _mtime_ns(path: str) -> int:
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return 0


def _group(out: str) -> _Matches:
    """ripgrep's ``path NUL line:text`` lines → files, newest first, with their matches.

    Lines without a NUL or a line number (ripgrep's "binary file matches" notices) are
    skipped. Blocking: it stats every file that matched.
    """
    by_file: dict[str, list[tuple[int, str]]] = {}
    for line in out.split("\n"):  # not splitlines(): \f or \u2028 may be inside a match
        name, nul, rest = line.partition("\0")
        number, colon, text = rest.partition(":")
        if nul and colon and number.isdigit():
            by_file.setdefault(name, []).append((int(number), text.removesuffix("\r")))
    order = sorted(by_file, key=lambda name: (-_mtime_ns(name), name))
    return [(name, by_file[name]) for name in order]


def _render(groups: _Matches, total: int) -> tuple[list[str], int]:
    """Output lines for the first matches that fit, and how many matches they show."""
    lines = [f"Found {total} matches"]
    shown = 0
    used = len(lines[0]) + 1
    for name, matches in groups:
        block = ([""] if shown else []) + [f"{name}:"]
        for number, text in matches:
            entry = f"  Line {number}: {text}"
            size = sum(len(b.encode()) + 1 for b in block) + len(entry.encode()) + 1
            if shown == MAX_MATCHES or used + size > MAX_OUTPUT_BYTES - _NOTE_BYTES:
                return lines, shown
            lines += [*block, entry]
            used += size
            block = []
            shown += 1
    return lines, shown


class GrepTool(Tool):
    """Searches file contents by regular expression."""

    name = "grep"
    description = (
        "Search file contents with a regular expression (ripgrep syntax, e.g. "
        r'"def\s+\w+" or "TODO|FIXME"). Returns matching lines with their line numbers, '
        "grouped by file, most recently modified files first, at most 100 lines. Narrow the "
        'search with path (a file or folder) and include (a file glob such as "*.{ts,tsx}"). '
        "Files ignored by the repository's .gitignore are skipped."
    )
    Params = GrepParams
    read_only = True
    changes_files = False

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        raw = params.path or "."
        candidate = await anyio.to_thread.run_sync(locate, await project_root(ctx), raw)
        is_dir = await anyio.Path(candidate).is_dir()
        target = await resolve_path(ctx, raw, kind="directory" if is_dir else "file")
        await ctx.ask_permission(
            "grep",
            [params.pattern],
            always=["*"],
            metadata={"pattern": params.pattern, "path": params.path, "include": params.include},
        )
        if not await anyio.Path(target).exists():
            raise ToolError(f"Path not found: {target}")
        args = [
            "--line-number",
            "--with-filename",
            "--no-heading",
            "--color=never",
            "--null",
            f"--max-columns={MAX_LINE_CHARS}",
            "--max-columns-preview",
        ]
        if params.include:
            args.append(f"--glob={params.include}")
        args += [*FILTER_ARGS, "--regexp", params.pattern, "--", str(target)]
        code, out, err = await run_rg(args, target if is_dir else target.parent)
        groups = await anyio.to_thread.run_sync(_group, out)
        if code == 2 and not groups:
            raise ToolError(f"grep failed: {err.strip()}")
        total = sum(len(matches) for _, matches in groups)
        if total == 0:
            return ToolResult(
                output="No files found",
                title=params.pattern,
                metadata={"matches": 0, "truncated": False},
            )
        lines, shown = _render(groups, total)
        if shown < total:
            lines += [
                "",
                f"(Results truncated: showing {shown} of {total} matches. Use a more specific "
                "pattern, path or include to see others.)",
            ]
        if code == 2:
            lines += ["", f"(Some paths could not be searched: {first_error(err)})"]
        return ToolResult(
            output="\n".join(lines),
            title=params.pattern,
            metadata={"matches": total, "truncated": shown < total},
        )
