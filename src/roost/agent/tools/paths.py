"""Path resolution for file tools: inside the session directory, or with permission.

Relative paths resolve against ``ToolContext.directory``. A path that resolves (symlinks
followed) outside that directory needs the ``external_directory`` permission for its folder,
as in OpenCode.
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from roost.agent.tools.base import ToolContext


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it (both already resolved)."""
    return path == root or root in path.parents


def locate(directory: Path, raw: str) -> Path:
    """``raw`` made absolute against ``directory``, with symlinks resolved (blocking)."""
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = directory / candidate
    return candidate.resolve()


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
        await ctx.ask_permission(
            "external_directory",
            [f"{folder}/*"],
            always=[f"{folder}/*"],
            metadata={"filepath": str(resolved), "parentDir": str(folder)},
        )
    return resolved
