"""Polling with a deadline: tests wait for a state, never sleep and hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], *, timeout_s: float = 15, what: str = "state") -> T:
    """Call ``probe`` until it returns something truthy; return it.

    Raises:
        TimeoutError: ``timeout_s`` passed first.
    """
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}; last probe: {last!r}")


def written(path: Path) -> str | None:
    """A ``wait_for`` probe: the file's stripped text once it exists and is not empty."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return text or None
