"""``edit``: exact text replacement in a file, after the ``edit`` permission (shown a diff).

``oldString`` must occur in the file exactly once, or any number of times with ``replaceAll``;
there is no fuzzy matching. The one adaptation is line endings: models write ``\\n``, so in a
file that uses CRLF both strings are matched and written with CRLF (as OpenCode does). An empty
``oldString`` creates a new file holding ``newString``. Edits of one file are serialized (per
resolved path, within this process), so the diff a user approves is the change that is made.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydantic import Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult
from roost.agent.tools.paths import resolve_path
from roost.agent.tools.write import project_root, relative, unified_diff, write_text

_locks: weakref.WeakValueDictionary[Path, asyncio.Lock] = weakref.WeakValueDictionary()


class EditParams(Params):
    filePath: str = Field(description="Absolute path of the file, or relative to the project")
    oldString: str = Field(description="The exact text to replace (empty to create a new file)")
    newString: str = Field(description="The text to put in its place")
    replaceAll: bool | None = Field(
        default=None, description="Replace every occurrence of oldString (default false)"
    )


def _lock(path: Path) -> asyncio.Lock:
    lock = _locks.get(path)
    if lock is None:
        lock = _locks[path] = asyncio.Lock()
    return lock


def _load(path: Path) -> str | None:
    """The file's text, or None when it does not exist (blocking).

    Raises:
        ToolError: A directory, unreadable, or not UTF-8 (rewriting it would corrupt it).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError as exc:
        raise ToolError(f"Path is a directory, not a file: {path}") from exc
    except OSError as exc:
        raise ToolError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(f"Cannot edit {path}: it is not UTF-8 text") from exc


def _exists(path: Path) -> bool:
    return path.exists()


def _with_line_endings(text: str, content: str) -> str:
    """``text`` with the line endings ``content`` uses (CRLF if it has any, else as given)."""
    if "\r\n" not in content:
        return text
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def replace(content: str, old: str, new: str, *, replace_all: bool, name: str) -> tuple[str, int]:
    """The edited content and how many occurrences were replaced.

    Raises:
        ToolError: ``old`` is missing, or occurs more than once without ``replace_all``.
    """
    old = _with_line_endings(old, content)
    new = _with_line_endings(new, content)
    count = content.count(old)
    if count == 0:
        raise ToolError(
            f"oldString was not found in {name}. It must match the file exactly, including "
            "whitespace, indentation and line endings; read the file again and copy the text."
        )
    if count > 1 and not replace_all:
        raise ToolError(
            f"oldString was found {count} times in {name}. Include more surrounding lines in "
            "oldString to make it unique, or set replaceAll to true to replace every occurrence."
        )
    return content.replace(old, new), count


def _counts(diff: str) -> tuple[int, int]:
    """``(added, removed)`` lines of a unified diff (its two header lines skipped)."""
    body = diff.split("\n")[2:]  # not splitlines(): \f or \u2028 may be inside a line
    added = sum(1 for line in body if line.startswith("+"))
    removed = sum(1 for line in body if line.startswith("-"))
    return added, removed


class EditTool(Tool):
    """Replaces exact text in a file."""

    name = "edit"
    description = (
        "Replace text in a file. oldString must match the file's current content exactly "
        "(whitespace and indentation included) and occur once; add surrounding lines to make it "
        "unique, or set replaceAll to change every occurrence. An empty oldString creates a new "
        "file containing newString. Read the file before editing it."
    )
    Params = EditParams

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """See the class docstring."""
        if params.oldString == params.newString:
            raise ToolError("No changes to apply: oldString and newString are identical.")
        path = await resolve_path(ctx, params.filePath)
        name = relative(await project_root(ctx), path)
        async with _lock(path):
            if params.oldString == "":
                if await anyio.to_thread.run_sync(_exists, path):
                    raise ToolError(
                        f"oldString is empty but {path} already exists. Give the exact text to "
                        "replace, or use write to replace the whole file."
                    )
                old_content, new_content, count = "", params.newString, 1
            else:
                loaded = await anyio.to_thread.run_sync(_load, path)
                if loaded is None:
                    raise ToolError(f"File not found: {path}")
                old_content = loaded
                new_content, count = replace(
                    old_content,
                    params.oldString,
                    params.newString,
                    replace_all=bool(params.replaceAll),
                    name=name,
                )
                if new_content == old_content:
                    raise ToolError("No changes to apply: the edit leaves the file unchanged.")
            diff = unified_diff(str(path), old_content, new_content)
            await ctx.ask_permission(
                "edit", [name], always=["*"], metadata={"filepath": str(path), "diff": diff}
            )
            await anyio.to_thread.run_sync(write_text, path, new_content)
        additions, deletions = _counts(diff)
        if params.oldString == "":
            output = f"Created {path}."
        elif count > 1:
            output = f"Edit applied successfully ({count} occurrences replaced)."
        else:
            output = "Edit applied successfully."
        return ToolResult(
            output=output,
            title=name,
            metadata={
                "diagnostics": {},  # LSP diagnostics by file, as OpenCode; no LSP runs here
                "filepath": str(path),
                "diff": diff,
                "additions": additions,
                "deletions": deletions,
                "filediff": {
                    "file": str(path),
                    "patch": diff,
                    "additions": additions,
                    "deletions": deletions,
                },
            },
        )
