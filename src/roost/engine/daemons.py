"""Tool processes that left their process group, found by the owner tag in their environment.

A tool call's processes live in a recorded process group that the call's end, abort and
recovery kill. A process that leaves the group (``setsid server &``, a daemon that double
forks) outlives the call on purpose, but not the server: every tool process is started with
``PROCESS_OWNER_ENV`` set to the server's owner id (``engine/owner.py``) and inherits it
wherever it goes, the way Jenkins' ProcessTreeKiller finds a build's stray processes by an
environment cookie. On a graceful stop the server kills the processes tagged with its own id;
at start-up, recovery kills those tagged with an owner that is provably dead (a crashed
server). A process that scrubs its environment (``env -i``) escapes; nothing else is touched.

Linux only (``/proc/<pid>/environ``); elsewhere nothing is found.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from roost.agent.tools.base import PROCESS_OWNER_ENV

log = logging.getLogger(__name__)

KILL_GRACE_S = 1.0
"""Between SIGTERM and SIGKILL."""
_TAG = PROCESS_OWNER_ENV.encode() + b"="


def tagged_processes() -> list[tuple[int, str]]:
    """Every visible process carrying an owner tag, as ``(pid, owner id)``; never this one."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        for item in environ.split(b"\0"):
            if item.startswith(_TAG):
                found.append((int(entry.name), item[len(_TAG) :].decode(errors="replace")))
                break
    return found


def kill_tagged(owned: Callable[[str], bool]) -> int:
    """SIGTERM every tagged process whose owner id satisfies ``owned``, then SIGKILL those
    still there after ``KILL_GRACE_S``. Blocking (run it off the event loop).

    Returns:
        How many processes were signalled.
    """
    targets = [pid for pid, owner in tagged_processes() if owned(owner)]
    for pid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    alive = targets
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _running(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if targets:
        log.warning("killed %d tool processes that had left their process group", len(targets))
    return len(targets)


def group_running(pgid: int) -> bool:
    """Whether any process of group ``pgid`` still runs: a zombie does not (it has died and
    waits for a parent that may never reap it, as an orphan of a crashed server under a
    container's init may wait forever). Reads ``/proc/<pid>/stat`` (state, pgrp)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie (a zombie has already died)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
