"""The crash harness (``roost chaos``) as part of the suite: real SIGKILLs at every cut point.

``ROOST_CHAOS_KILLS`` sets how many kills to aim for (CI: 200; default here 24, one round per
point and then some, so a local run stays short).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rich.console import Console

from roost.cli.chaos import chaos, report
from roost.engine.chaos import CUT_POINTS

pytestmark = [pytest.mark.crash, pytest.mark.timeout(1500)]


def test_chaos_kills_land_at_every_cut_point_and_no_invariant_breaks(tmp_path: Path) -> None:
    kills = int(os.environ.get("ROOST_CHAOS_KILLS", "24"))
    console = Console(record=True, width=120)
    tally = chaos(tmp_path, kills=kills, workers=2, console=console)
    report(tally, console)
    print(console.export_text())
    assert sum(tally.missed.values()) == 0, dict(tally.missed)
    assert all(tally.landed[point] > 0 for point in CUT_POINTS), dict(tally.landed)
    assert sum(tally.landed.values()) >= kills
    assert tally.violations == []
