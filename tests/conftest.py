"""Fixtures shared by every tier: the scripted LLM, a project directory, a real server, and
the store's databases (SQLite files and a private PostgreSQL cluster)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import INSTALL_HINT, PostgresCluster, server_bin_dir
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import RoostServer, project_config


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    """A scripted OpenAI-compatible server on loopback."""
    with ScriptedLLM() as scripted:
        yield scripted


@pytest.fixture
def project(tmp_path: Path, llm: ScriptedLLM) -> Path:
    """A project directory whose ``opencode.json`` uses the scripted LLM."""
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "opencode.json").write_text(json.dumps(project_config(llm.base_url)))
    return directory


@pytest.fixture
def server(project: Path, tmp_path: Path) -> Iterator[RoostServer]:
    """A running ``roost serve`` on the project, with its own database file."""
    srv = RoostServer(project, tmp_path / "roost.db").start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A private PostgreSQL cluster for this test process (one per xdist worker).

    Skips when PostgreSQL is not installed, except in CI (``CI`` set), where it always is:
    there a missing PostgreSQL fails the tests instead of hiding them.
    """
    bin_dir = server_bin_dir()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not installed in CI: {INSTALL_HINT}")
        pytest.skip(f"PostgreSQL is not installed: {INSTALL_HINT}")
    cluster = PostgresCluster(bin_dir).start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database in the private cluster."""
    return postgres_cluster.create_database()


@pytest.fixture
def server_on_each_store(project: Path, store_target: Path | str) -> Iterator[RoostServer]:
    """A running ``roost serve`` on the project, once on SQLite and once on PostgreSQL; a
    module uses it as its ``server`` (``tests/crash/conftest.py`` does for the crash suite)."""
    srv = RoostServer(project, store_target).start()
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's store lives, once per database: a fresh SQLite file, or a fresh
    PostgreSQL database (its URL). Pass it to ``Database.open`` or ``roost serve --db``."""
    if request.param == "sqlite":
        return tmp_path / "store.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
