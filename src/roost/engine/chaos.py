"""Named cut points where a crash test may kill the server (SIGKILL), and nothing else.

``roost chaos`` starts ``roost serve`` with ``ROOST_CHAOS_CUT=<point>[:<skip>]``; the CLI calls
``arm`` and, when execution reaches that point for the ``skip``+1-th time, the process prints
``roost chaos: SIGKILL at <point>`` on stderr and kills itself, exactly there. Unarmed (the
normal case) ``cut`` is one comparison.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Final

CUT_POINTS: Final = (
    "after-admission",
    "mid-stream",
    "mid-tool",
    "question-wait",
    "during-abort",
    "mid-recovery",
)
"""Where the server can be killed; each is placed right after the named state is durable."""

_armed: str | None = None
_skip = 0


def arm(point: str, skip: int = 0) -> None:
    """Kill the process at the ``skip``+1-th time ``point`` is reached.

    Raises:
        ValueError: Unknown point.
    """
    global _armed, _skip
    if point not in CUT_POINTS:
        raise ValueError(f"unknown cut point {point!r}; one of {', '.join(CUT_POINTS)}")
    _armed, _skip = point, skip


def cut(point: str) -> None:
    """A cut point: SIGKILL this process here if armed for it."""
    global _skip
    if _armed != point:
        return
    if _skip > 0:
        _skip -= 1
        return
    sys.stderr.write(f"roost chaos: SIGKILL at {point}\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
