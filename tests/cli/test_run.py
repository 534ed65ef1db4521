"""``roost run``: a real subprocess printing a streamed answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scripted_llm import Fail, ScriptedLLM, Turn, text_turn
from tests.support.server import RoostServer

pytestmark = pytest.mark.e2e


def _roost(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(cwd / ".xdg-config")}
    return subprocess.run(
        [sys.executable, "-m", "roost", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_attached_prints_the_streamed_answer(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(text_turn("the answer is forty-two"))
    done = _roost("run", "--attach", server.url, "what is the answer?", cwd=server.directory)
    assert done.returncode == 0, done.stderr
    assert "the answer is forty-two" in done.stdout
    assert llm.requests[-1]["messages"][-1]["content"] == "what is the answer?"


def test_run_without_attach_starts_its_own_server(
    project: Path, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.enqueue(text_turn("started and answered"))
    done = _roost("run", "--db", str(tmp_path / "own.db"), "hello", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "started and answered" in done.stdout
    assert (tmp_path / "own.db").exists()


def test_run_reports_a_provider_error_and_exits_1(server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(Turn([Fail(400, "the model refused")]))
    done = _roost("run", "--attach", server.url, "hi", cwd=server.directory)
    assert done.returncode == 1
    assert "APIError" in done.stderr and "the model refused" in done.stderr
