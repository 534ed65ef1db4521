"""``write``: create or overwrite a whole file, after the ``edit`` permission (shown a diff).

Also home to what every file change shares (``edit`` uses it too): the unified diff a
permission prompt shows, the project-relative name a prompt and a title use, and the write
itself. Overwriting an existing file is atomic (a temporary file in the same folder, then
``os.replace``), so a crash mid-write never leaves the user's file half written; the file keeps
its permission bits.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult
from roost.agent.tools.paths import resolve_path

_LINE = re.compile(r"[^\n]*\n|[^\n]+")


class WriteParams(Params):
    content: str = Field(description="The complete content the file should have")
    filePath: str = Field(description="Absolute path of the file, or relative to the project")


def relative(root: Path, path: Path) -> str:
    """``path`` relative to the project ``root`` when inside it (``.`` for the root), else absolute.

    Both are resolved. Permission patterns and titles use this form, as OpenCode does.
    """
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


async def project_root(ctx: ToolContext) -> Path:
    """The session's directory, resolved (symlinks followed)."""
    return Path(await anyio.Path(ctx.directory).resolve())


def unified_diff(filepath: str, old: str, new: str) -> str:
    """A unified diff from ``old`` to ``new`` (git's ``\\ No newline at end of file`` included)."""
    lines = []
    for line in difflib.unified_diff(
        _LINE.findall(old), _LINE.findall(new), fromfile=filepath, tofile=filepath
    ):
        lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(lines)


def read_existing(path: Path) -> str | None:
    """The current text of ``path``, or None when there is no file (blocking).

    Raises:
        ToolError: ``path`` is a directory, or cannot be read.
    """
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise ToolError(f"Path is a directory, not a file: {path}") from exc
    except OSError as exc:
        raise ToolError(f"Cannot read {path}: {exc.strerror or exc}") from exc


def write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, newlines untouched) to ``path``, creating parent folders (blocking).

    An existing file is replaced atomically and keeps its mode; a new file gets the usual
    umask-derived mode.

    Raises:
        ToolError: The file or a parent folder cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            with path.open("x", encoding="utf-8", newline="") as new_file:
                new_file.write(text)
            return
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as temp_file:
                temp_file.write(text)
                temp_file.flush()
                os.fsync(temp_file.fileno())
            os.chmod(temp, mode)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
    except IsADirectoryError as exc:
        raise ToolError(f"Path is a directory, not a file: {path}") from exc
    except OSError as exc:
        raise ToolError(f"Cannot write {path}: {exc.strerror or exc}") from exc


class WriteTool(Tool):
    """Writes a whole file."""

    name = "write"
    description = (
        "Write a file with exactly the given content, replacing it if it exists and creating "
        "missing parent folders. To change part of an existing file use edit instead; read a "
        "file before overwriting it so nothing is lost."
    )
    Params = WriteParams

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        path = await resolve_path(ctx, params.filePath)
        name = relative(await project_root(ctx), path)
        old = await anyio.to_thread.run_sync(read_existing, path)
        diff = unified_diff(str(path), old or "", params.content)
        await ctx.ask_permission(
            "edit", [name], always=["*"], metadata={"filepath": str(path), "diff": diff}
        )
        await anyio.to_thread.run_sync(write_text, path, params.content)
        verb = "Overwrote" if old is not None else "Created"
        size = len(params.content.encode())
        return ToolResult(
            output=f"{verb} {path} ({size} bytes).",
            title=name,
            # OpenCode's shape: the TUI renders the written content only when ``diagnostics``
            # (LSP diagnostics by file; Roost runs no language server) is present.
            metadata={"diagnostics": {}, "filepath": str(path), "exists": old is not None},
        )
