"""The ``rg`` binary (from the ``ripgrep`` PyPI package) and a cancellable way to run it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from functools import cache
from pathlib import Path

from roost.agent.tools.base import ToolError

_TIMEOUT_S = 60.0


@cache
def rg_path() -> str:
    """Path of ``rg``: next to this interpreter (the venv's ``bin``), else on ``PATH``.

    Raises:
        ToolError: ripgrep is not installed.
    """
    beside = Path(sys.executable).parent / "rg"
    if beside.exists():
        return str(beside)
    found = shutil.which("rg")
    if found is None:
        raise ToolError("ripgrep (rg) is not installed; install the `ripgrep` package")
    return found


async def run_rg(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run ``rg ARGS`` in ``cwd``; returns ``(exit code, stdout, stderr)``.

    The process is killed if the caller is cancelled or it runs longer than 60 s.
    """
    proc = await asyncio.create_subprocess_exec(
        rg_path(),
        *args,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            out, err = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
