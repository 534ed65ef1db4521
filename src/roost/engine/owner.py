"""Who holds a lease: one server process, named so that its death can be proven.

An owner id is ``host/boot/pid/start``: the host name, the kernel boot id, the process id and
the process start time in clock ticks since boot (``/proc/<pid>/stat`` field 22). On the same
host and boot, an owner is provably dead when no process has that pid with that start time; a
recycled pid has another start time. Owners on another host (or before a reboot) cannot be
checked this way; their leases are recovered when they expire.
"""

from __future__ import annotations

import os
import socket
from functools import cache
from pathlib import Path


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown-boot"


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]  # field 22 overall: starttime


@cache
def this_owner() -> str:
    """This process's owner id."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{_boot_id()}/{pid}/{start_ticks(pid) or 0}"


def is_provably_dead(owner: str) -> bool:
    """True when ``owner`` ran on this host and boot and that process no longer exists."""
    try:
        host, boot, pid_text, start = owner.split("/")
    except ValueError:
        return False
    if host != socket.gethostname() or boot != _boot_id():
        return False
    return start_ticks(int(pid_text)) != start


def same_host(owner: str) -> bool:
    """Whether ``owner`` ran on this host and boot (its process ids mean something here)."""
    parts = owner.split("/")
    return len(parts) == 4 and parts[0] == socket.gethostname() and parts[1] == _boot_id()
