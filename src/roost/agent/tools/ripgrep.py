"""The ``rg`` binary (from the ``ripgrep`` PyPI package) and a cancellable way to run it.

What glob and grep see is what OpenCode 1.18.34 sees, because both run ripgrep the way it
does: hidden files included, ``.git`` left out, and ripgrep's ignore rules. ``.gitignore`` (and
``.git/info/exclude``, the global git excludes) apply only inside a git repository, that is
below a folder holding ``.git``, as in git itself; ``.ignore`` and ``.rgignore`` apply
everywhere. We do not pass ``--no-require-git``: outside a repository it would also honour any
stray ``.gitignore`` in a parent folder of the project (up to ``/``), hiding files the user
never meant to hide, and OpenCode does not pass it either.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from functools import cache
from pathlib import Path

import anyio

from roost.agent.tools.base import ToolError

RG_TIMEOUT_S = 60.0
"""Longest a single ripgrep run may take before it is killed."""

FILTER_ARGS = ("--hidden", "--glob=!**/.git/**")
"""Which files glob and grep consider: dotfiles too, never the repository's ``.git``.

Pass these after any ``--glob`` from the model: in ripgrep a later glob wins, so ``**/*``
given last would bring ``.git`` back."""


@cache
def rg_path() -> str:
    """Path of ``rg``: next to this interpreter (the venv's ``bin``), else on ``PATH``.

    Raises:
        ToolError: ripgrep is not installed.
    """
    beside = Path(sys.executable).parent / "rg"
    if beside.is_file():
        return str(beside)
    found = shutil.which("rg")
    if found is None:
        raise ToolError(
            "ripgrep (rg) is not installed, so this tool cannot run; install the `ripgrep` "
            "package in Roost's environment or put rg on PATH"
        )
    return found


async def run_rg(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run ``rg --no-config ARGS`` in ``cwd``.

    ``--no-config`` keeps a user's ``RIPGREP_CONFIG_PATH`` from changing the output format we
    parse. The process is killed if the caller is cancelled or it outlives ``RG_TIMEOUT_S``.

    Returns:
        ``(exit code, stdout, stderr)``, decoded as UTF-8 with replacement. ripgrep exits 0 when
        something matched, 1 when nothing did, and 2 on errors (possibly with partial results).

    Raises:
        ToolError: rg is missing, could not start, or timed out.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            rg_path(),
            "--no-config",
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        raise ToolError(f"could not start ripgrep: {exc}") from exc
    try:
        async with asyncio.timeout(RG_TIMEOUT_S):
            out, err = await proc.communicate()
    except TimeoutError as exc:
        await _kill(proc)
        raise ToolError(
            f"ripgrep took longer than {RG_TIMEOUT_S:.0f} s; search a smaller path"
        ) from exc
    except BaseException:
        await _kill(proc)  # cancelled (abort): no orphan keeps scanning the disk
        raise
    code = proc.returncode if proc.returncode is not None else 2
    return code, out.decode(errors="replace"), err.decode(errors="replace")


def first_error(stderr: str) -> str:
    """The first line of ripgrep's ``stderr``, for a note about a partial result."""
    lines = stderr.strip().splitlines()
    return lines[0] if lines else "unknown error"


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    # Shielded: under a cancelled anyio scope every await is cancelled again, and the caller
    # should only go on once rg is gone. After SIGKILL this takes microseconds.
    with anyio.CancelScope(shield=True):
        await proc.wait()
