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


@pytest.mark.postgres
def test_chaos_on_postgresql_lands_at_every_cut_point_without_a_violation(
    tmp_path: Path, postgres_url: str
) -> None:
    """A short run on PostgreSQL (each worker on a fresh database of the private cluster);
    the long runs are ``roost chaos --db postgresql://… --kills N``, a benchmark."""
    console = Console(record=True, width=120)
    tally = chaos(tmp_path, kills=12, workers=2, console=console, postgres=postgres_url)
    report(tally, console)
    assert sum(tally.missed.values()) == 0, dict(tally.missed)
    assert all(tally.landed[point] > 0 for point in CUT_POINTS), dict(tally.landed)
    assert tally.violations == [], console.export_text()
