"""Fixtures shared by every tier: the scripted LLM, a project directory, a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

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
