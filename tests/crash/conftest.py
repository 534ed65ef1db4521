"""The crash suite runs on both databases: every test that takes ``server`` runs once against
an SQLite file and once against a PostgreSQL database (``store_target``)."""

from __future__ import annotations

import pytest

from tests.support.server import RoostServer


@pytest.fixture
def server(server_on_each_store: RoostServer) -> RoostServer:
    """``server_on_each_store`` (tests/conftest.py)."""
    return server_on_each_store
