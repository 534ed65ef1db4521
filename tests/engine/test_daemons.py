"""Process inspection behind recovery's kills: a group of zombies is not running any more."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from roost.engine.daemons import group_running
from roost.engine.recovery import group_alive


def test_a_group_whose_members_are_zombies_is_not_running() -> None:
    # The child exits at once and is not reaped until wait(): a zombie in its own group, as
    # an orphan of a crashed server under an init that never reaps stays.
    child = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{child.pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert group_alive(child.pid), "signals still reach the zombie's group"
        assert not group_running(child.pid)
    finally:
        child.wait()
    assert not group_alive(child.pid)


def test_a_group_with_a_live_member_is_running() -> None:
    child = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert group_running(child.pid)
        assert not group_running(os.getpid() + 10_000_000)
    finally:
        child.kill()
        child.wait()
