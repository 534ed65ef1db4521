"""``roost doctor``: finds invariant violations left by a crash, and repairs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scripted_llm import ScriptedLLM, tool_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.crash


def _doctor(db: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roost", "doctor", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_doctor_reports_a_crashed_turn_and_repairs_it(
    server: RoostServer, llm: ScriptedLLM, tmp_path: Path
) -> None:
    question = {
        "questions": [
            {"question": "?", "header": "q", "options": [{"label": "a", "description": "a"}]}
        ]
    }
    llm.enqueue(tool_turn("question", question))
    sid = server.create_session()["id"]
    assert server.post(f"/session/{sid}/prompt_async", json=prompt_body("ask")).status_code == 204
    wait_for(lambda: server.get("/question").json(), what="the question pending")
    server.kill()
    healthy = _doctor(server.db_path)
    assert healthy.returncode == 1, healthy.stdout
    assert "left running" in healthy.stdout
    assert "pending with no live run" in healthy.stdout
    repaired = _doctor(server.db_path, "--repair")
    assert repaired.returncode == 0, repaired.stdout
    assert "repaired: run" in repaired.stdout
    assert "After repair: 0 violations" in repaired.stdout
    again = _doctor(server.db_path)
    assert again.returncode == 0, again.stdout
