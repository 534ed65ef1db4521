"""Path resolution for tools: inside the session directory, or with permission.

Relative paths resolve against ``ToolContext.directory``. A path that resolves (symlinks
followed) outside that directory needs the ``external_directory`` permission for its folder,
as in OpenCode: the pattern is ``<folder>/*``, the folder being the path itself when it names a
directory, else its parent. ``bash`` asks once for every folder its command touches
(``ask_external_directories``); file tools ask for one path (``resolve_path``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any

import anyio.to_thread

from roost.agent.tools.base import ToolContext

ANY_DIRECTORY = "*"
"""The ``external_directory`` pattern when a tool cannot tell which folders it touches."""


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it (both already resolved)."""
    return path == root or root in path.parents


def locate(directory: Path, raw: str) -> Path:
    """``raw`` made absolute against ``directory``, with symlinks resolved (blocking)."""
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = directory / candidate
    return candidate.resolve()


def folder_pattern(folder: PurePath) -> str:
    """The ``external_directory`` pattern for a folder: ``<folder>/*`` (``/*`` for ``/``)."""
    return f"{str(folder).rstrip('/')}/*"


def external_folders(root: Path, paths: Iterable[PurePath]) -> list[Path]:
    """The folders outside ``root`` that ``paths`` reach, in first-seen order (blocking).

    Each path is resolved (symlinks followed; it need not exist); one outside ``root`` counts
    as itself when it is a directory, else as its parent.

    Args:
        root: The session directory, already resolved.
        paths: Absolute paths.
    """
    folders: dict[Path, None] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if not is_inside(resolved, root):
            folders[resolved if resolved.is_dir() else resolved.parent] = None
    return list(folders)


async def ask_external_directories(
    ctx: ToolContext, patterns: list[str], *, metadata: dict[str, Any]
) -> None:
    """Ask ``external_directory`` once for ``patterns`` (``always`` approves the same ones).

    Raises:
        PermissionRejected: Access was refused.
    """
    await ctx.ask_permission(
        "external_directory", patterns, always=list(patterns), metadata=metadata
    )


async def resolve_path(ctx: ToolContext, raw: str, *, kind: str = "file") -> Path:
    """The absolute, resolved path for ``raw``.

    Args:
        kind: ``file`` or ``directory``: which folder the permission pattern names.

    Raises:
        PermissionRejected: The path is outside the directory and access was refused.
    """
    root = await anyio.to_thread.run_sync(ctx.directory.resolve)
    resolved = await anyio.to_thread.run_sync(locate, root, raw)
    if not is_inside(resolved, root):
        folder = resolved if kind == "directory" else resolved.parent
        await ask_external_directories(
            ctx,
            [folder_pattern(folder)],
            metadata={"filepath": str(resolved), "parentDir": str(folder)},
        )
    return resolved
