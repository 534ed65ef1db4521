"""The crash suite runs on both databases: every test that takes ``server`` runs once against
an SQLite file and once against a PostgreSQL database (``store_target``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import RoostServer


@pytest.fixture
def server(project: Path, store_target: Path | str) -> Iterator[RoostServer]:
    """A running ``roost serve`` on the project, with a store of its own."""
    srv = RoostServer(project, store_target).start()
    try:
        yield srv
    finally:
        srv.close()
