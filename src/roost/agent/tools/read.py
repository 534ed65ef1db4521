"""``read``: a file's numbered lines (windowed by ``offset``/``limit``) or a directory listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult
from roost.agent.tools.paths import resolve_path

DEFAULT_LIMIT = 2000
MAX_LINE_CHARS = 2000
_BINARY_SNIFF_BYTES = 8192


class ReadParams(Params):
    filePath: str = Field(description="Absolute path, or relative to the project directory")
    offset: int | None = Field(default=None, ge=0, description="First line to read (0-based)")
    limit: int | None = Field(default=None, ge=0, description="How many lines (default 2000)")


def _suggestions(path: Path) -> list[str]:
    folder = path.parent
    if not folder.is_dir():
        return []
    stem = path.name.lower()
    return sorted(
        str(p) for p in folder.iterdir() if stem in p.name.lower() or p.name.lower() in stem
    )[:3]


def _read(path: Path, offset: int, limit: int) -> tuple[str, dict[str, Any]]:
    """Blocking work of the tool; raises ToolError."""
    if not path.exists():
        hint = _suggestions(path)
        more = "\n\nDid you mean one of these?\n" + "\n".join(hint) if hint else ""
        raise ToolError(f"File not found: {path}{more}")
    if path.is_dir():
        entries = sorted((p.name + "/" if p.is_dir() else p.name) for p in path.iterdir())
        window = entries[offset : offset + limit]
        out = "\n".join(window)
        if offset + limit < len(entries):
            out += f"\n\n(showing {len(window)} of {len(entries)} entries; use offset to see more)"
        return out or "(empty directory)", {
            "preview": "\n".join(window[:20]),
            "truncated": offset + limit < len(entries),
        }
    with path.open("rb") as f:
        head = f.read(_BINARY_SNIFF_BYTES)
    if b"\0" in head:
        raise ToolError(f"Cannot read binary file: {path}")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    window = lines[offset : offset + limit]
    numbered = []
    for i, line in enumerate(window, start=offset + 1):
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + "... (line truncated)"
        numbered.append(f"{i:05d}| {line}")
    out = "<file>\n" + "\n".join(numbered)
    truncated = offset + limit < len(lines)
    if truncated:
        out += f"\n\n(File has more lines. Use 'offset' to read beyond line {offset + len(window)})"
    else:
        out += f"\n\n(End of file - total {len(lines)} lines)"
    out += "\n</file>"
    return out, {"preview": "\n".join(window[:20]), "truncated": truncated}


class ReadTool(Tool):
    """Reads a file or lists a directory."""

    name = "read"
    description = (
        "Read a file from the project (or, with permission, elsewhere). Lines come back "
        "numbered; by default the first 2000 lines, use offset and limit to read other parts "
        "of long files. Reading a directory lists its entries (folders end with /)."
    )
    Params = ReadParams
    read_only = True

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        path = await resolve_path(ctx, params.filePath)
        await ctx.ask_permission("read", [str(path)], metadata={"filepath": str(path)})
        offset = params.offset or 0
        limit = params.limit if params.limit is not None else DEFAULT_LIMIT
        output, metadata = await anyio.to_thread.run_sync(_read, path, offset, limit)
        try:
            title = str(path.relative_to(ctx.directory.resolve()))
        except ValueError:
            title = str(path)
        return ToolResult(output=output, title=title, metadata=metadata)
