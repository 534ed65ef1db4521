"""``roost serve`` refuses lease and store options that cannot work, before starting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _serve(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roost", "serve", "--port", "0", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROOST_DB": "", "ROOST_LEASE_TTL_MS": ""},
    )


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--lease-ttl-ms", "3000", "--lease-renew-ms", "3000"], "--lease-renew-ms"),
        (["--lease-ttl-ms", "500"], "--lease-ttl-ms"),
        (["--pool-size", "0"], "--pool-size"),
    ],
)
def test_lease_and_pool_values_that_cannot_work_are_refused(
    args: list[str], names: str, tmp_path: Path
) -> None:
    done = _serve("--db", str(tmp_path / "roost.db"), *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert names in done.stderr
    assert not (tmp_path / "roost.db").exists()


def test_a_lease_ttl_from_the_environment_must_be_a_number(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "roost", "serve", "--port", "0", "--db", str(tmp_path / "x.db")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROOST_LEASE_TTL_MS": "soon"},
    )
    assert done.returncode == 2, done.stderr
    assert "ROOST_LEASE_TTL_MS" in done.stderr
