"""``read``: a window of a text file's lines, numbered, or a directory's entries.

The output has OpenCode 1.18.34's shape, which models and clients know::

    <path>/project/app.py</path>
    <type>file</type>
    <content>
    1: import os
    2: ...

    (Showing lines 1-2000 of 5120. Use offset=2001 to continue.)
    </content>

``offset`` is the 1-based number of the first line (or entry) shown, as in OpenCode (which also
takes 0 to mean 1); ``limit`` is how many (default 2000). Lines longer than 2000 characters are
cut. The window also stops where the whole output would pass the engine's limits
(``MAX_OUTPUT_LINES`` / ``MAX_OUTPUT_BYTES``), so the engine never cuts the trailer that says
how to read on. Binary files (by extension, a NUL byte, or mostly control bytes in the first
4 KiB, OpenCode's test) are refused.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import (
    MAX_OUTPUT_BYTES,
    MAX_OUTPUT_LINES,
    Params,
    Tool,
    ToolContext,
    ToolError,
    ToolResult,
)
from roost.agent.tools.paths import locate, resolve_path
from roost.agent.tools.write import project_root, relative

DEFAULT_LIMIT = 2000
"""Lines (or directory entries) shown when ``limit`` is not given."""
MAX_LINE_CHARS = 2000
"""Longer lines are cut to this many characters."""

_LINE_CUT = f"... (line truncated to {MAX_LINE_CHARS} chars)"
_SAMPLE_BYTES = 4096
_PREVIEW_LINES = 20
_FRAME_LINES = 6
"""Output lines around the window: three tags before; a blank, the trailer, a tag after."""
_TRAILER_BYTES = 256
"""Bytes kept free for the trailer when fitting a window into ``MAX_OUTPUT_BYTES``."""
# OpenCode's list, kept compact rather than one suffix per line.
# fmt: off
_BINARY_SUFFIXES = frozenset({
    ".zip", ".tar", ".gz", ".7z", ".jar", ".war", ".class", ".exe", ".dll", ".so", ".o", ".a",
    ".lib", ".obj", ".wasm", ".pyc", ".pyo", ".bin", ".dat", ".doc", ".docx", ".xls", ".xlsx",
    ".ppt", ".pptx", ".odt", ".ods", ".odp",
})
# fmt: on


class ReadParams(Params):
    filePath: str = Field(description="Absolute path of the file or directory, or relative")
    offset: int | None = Field(
        default=None, ge=0, description="Number of the first line to show (1-based; default 1)"
    )
    limit: int | None = Field(
        default=None, ge=0, description="How many lines to show (default 2000)"
    )


@dataclass
class _Window:
    """The part of a file that fits, and where it stops."""

    items: list[str] = field(default_factory=list)
    total: int = 0
    """Lines in the whole file; a lower bound when ``capped``."""
    more: bool = False
    capped: bool = False
    """Stopped early because the output would pass ``MAX_OUTPUT_BYTES``."""


def _budget(header: str) -> tuple[int, int]:
    """``(lines, bytes)`` a window may use after ``header`` and before the trailer."""
    return MAX_OUTPUT_LINES - _FRAME_LINES, MAX_OUTPUT_BYTES - len(header.encode()) - _TRAILER_BYTES


def _is_binary(path: Path) -> bool:
    if path.suffix.lower() in _BINARY_SUFFIXES:
        return True
    with path.open("rb") as f:
        sample = f.read(_SAMPLE_BYTES)
    if not sample:
        return False
    if b"\0" in sample:
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control / len(sample) > 0.3


def _file_window(path: Path, first: int, limit: int, header: str) -> _Window:
    max_lines, max_bytes = _budget(header)
    window = _Window()
    used = 0
    # Universal newlines: \n, \r\n and a lone \r all end a line, as in OpenCode's readline.
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        for raw in f:
            window.total += 1
            if window.total < first:
                continue
            if len(window.items) >= min(limit, max_lines):
                window.more = True
                continue
            line = raw.removesuffix("\n")
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + _LINE_CUT
            text = f"{window.total}: {line}"
            size = len(text.encode()) + 1
            if used + size > max_bytes:
                window.more = window.capped = True
                break
            window.items.append(text)
            used += size
    return window


def _read_file(path: Path, first: int, limit: int) -> tuple[str, dict[str, Any]]:
    if _is_binary(path):
        raise ToolError(f"Cannot read binary file: {path}")
    header = f"<path>{path}</path>\n<type>file</type>\n<content>\n"
    window = _file_window(path, first, limit, header)
    if first > window.total and not (window.total == 0 and first == 1):
        raise ToolError(f"Offset {first} is out of range for this file ({window.total} lines)")
    last = first + len(window.items) - 1
    if window.capped:
        trailer = (
            f"(Output capped at {MAX_OUTPUT_BYTES // 1024} KB. Showing lines {first}-{last}. "
            f"Use offset={last + 1} to continue.)"
        )
    elif window.more:
        trailer = (
            f"(Showing lines {first}-{last} of {window.total}. Use offset={last + 1} to continue.)"
        )
    else:
        trailer = f"(End of file - total {window.total} lines)"
    output = header + "\n".join(window.items) + f"\n\n{trailer}\n</content>"
    preview = "\n".join(item.split(": ", 1)[1] for item in window.items[:_PREVIEW_LINES])
    return output, {"preview": preview, "truncated": window.more, "loaded": []}


def _entries(path: Path) -> list[str]:
    """The folder's entry names, folders (symlinks to folders too) with a trailing ``/``."""
    with os.scandir(path) as listing:
        names = [e.name + "/" if e.is_dir() else e.name for e in listing]
    return sorted(names, key=lambda name: (name.casefold(), name))


def _read_directory(path: Path, first: int, limit: int) -> tuple[str, dict[str, Any]]:
    header = f"<path>{path}</path>\n<type>directory</type>\n<entries>\n"
    max_lines, max_bytes = _budget(header)
    entries = _entries(path)
    shown: list[str] = []
    used = 0
    for name in entries[first - 1 : first - 1 + min(limit, max_lines)]:
        used += len(name.encode()) + 1
        if used > max_bytes:
            break
        shown.append(name)
    more = first - 1 + len(shown) < len(entries)
    if more:
        trailer = (
            f"(Showing {len(shown)} of {len(entries)} entries. "
            f"Use offset={first + len(shown)} to continue.)"
        )
    else:
        trailer = f"({len(entries)} entries)"
    output = header + "\n".join(shown) + f"\n\n{trailer}\n</entries>"
    return output, {"preview": "\n".join(shown[:_PREVIEW_LINES]), "truncated": more, "loaded": []}


def _suggestions(path: Path) -> list[str]:
    """Up to three names in the missing file's folder that look like it."""
    try:
        names = sorted(os.listdir(path.parent))
    except OSError:
        return []
    wanted = path.name.lower()
    similar = [n for n in names if wanted in n.lower() or n.lower() in wanted]
    similar += difflib.get_close_matches(path.name, names, n=3, cutoff=0.7)
    return [str(path.parent / n) for n in dict.fromkeys(similar)][:3]


def read_path(path: Path, first: int, limit: int) -> tuple[str, dict[str, Any]]:
    """The tool's blocking work: output and metadata for ``path`` (also what a prompt's
    attached text file becomes, ``agent/attachments.py``).

    Raises:
        ToolError: Missing, binary, not a regular file, unreadable, or ``first`` past the end
            of the file.
    """
    try:
        if path.is_dir():
            return _read_directory(path, first, limit)
        if path.is_file():
            return _read_file(path, first, limit)
        if path.exists():  # a FIFO or device: reading could block forever or never end
            raise ToolError(f"Cannot read {path}: not a regular file or directory")
    except OSError as exc:
        raise ToolError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    hint = _suggestions(path)
    more = "\n\nDid you mean one of these?\n" + "\n".join(hint) if hint else ""
    raise ToolError(f"File not found: {path}{more}")


class ReadTool(Tool):
    """Reads a file's lines or lists a directory."""

    name = "read"
    description = (
        "Read a text file or list a directory. File lines come back numbered as "
        "'<line>: <text>', 2000 lines at a time by default; for a longer file call again with "
        "offset set to the number of the next line to read (the output says which). Lines over "
        "2000 characters are cut; use grep to find text in long files. A directory lists its "
        "entries, one per line, folders ending in /. Read several files in parallel when useful."
    )
    Params = ReadParams
    read_only = True
    changes_files = False

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        root = await project_root(ctx)
        candidate = await anyio.to_thread.run_sync(locate, root, params.filePath)
        kind = "directory" if await anyio.Path(candidate).is_dir() else "file"
        path = await resolve_path(ctx, params.filePath, kind=kind)
        name = relative(root, path)
        await ctx.ask_permission("read", [name], always=["*"], metadata={"filepath": str(path)})
        first = params.offset or 1
        limit = params.limit or DEFAULT_LIMIT
        output, metadata = await anyio.to_thread.run_sync(read_path, path, first, limit)
        return ToolResult(output=output, title=name, metadata=metadata)
