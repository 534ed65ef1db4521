"""OpenCode's own CLI (``opencode run --attach``) against a real Roost process.

What the CLI calls (1.18.34): ``POST /session`` with a permission ruleset denying ``question``,
``plan_enter`` and ``plan_exit``; ``GET /agent`` when ``--agent`` is given; ``GET /config``;
``GET /event``; then ``POST /session/{id}/message``, whose reply ends the command.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.compat.conftest import OPENCODE_BIN, require_node_modules
from tests.support.histories import fill_long_session
from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import MODEL_ID, PROVIDER_ID, RoostServer

pytestmark = pytest.mark.compat

_RUN_TIMEOUT_S = 60
_CLOSED_REGISTRY = "http://127.0.0.1:9/"


def opencode_env(home: Path) -> dict[str, str]:
    """A private HOME and XDG dirs, no update checks or downloads, npm and bun pointed at a
    closed port (as ``/work/shared/bench/servers/opencode-serve.sh`` does)."""
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        "OPENCODE_DISABLE_CLAUDE_CODE": "1",
        "NPM_CONFIG_REGISTRY": _CLOSED_REGISTRY,
        "npm_config_registry": _CLOSED_REGISTRY,
        "BUN_CONFIG_REGISTRY": _CLOSED_REGISTRY,
    }


def opencode_run(
    server: RoostServer, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``opencode run --attach URL -m scripted/scripted-model ARGS…`` in the project."""
    require_node_modules()
    home = tmp_path / "opencode-home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [
            str(OPENCODE_BIN),
            "run",
            "--attach",
            server.url,
            "-m",
            f"{PROVIDER_ID}/{MODEL_ID}",
            *args,
        ],
        cwd=server.directory,
        env=opencode_env(home),
        capture_output=True,
        text=True,
        timeout=_RUN_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_opencode_run_attach_prints_the_answer(
    server: RoostServer, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.enqueue(text_turn("roost answers the opencode cli"))
    done = opencode_run(server, tmp_path, "hello")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "roost answers the opencode cli" in done.stdout
    sessions = server.get("/session").json()
    assert len(sessions) == 1
    # The CLI's own ruleset: a non-interactive run may not ask questions.
    assert {"permission": "question", "action": "deny", "pattern": "*"} in sessions[0]["permission"]
    user, assistant = server.messages(sessions[0]["id"])
    assert user["parts"][0]["text"] == "hello"
    assert user["info"]["model"] == {"providerID": PROVIDER_ID, "modelID": MODEL_ID}
    assert assistant["info"]["time"]["completed"] >= assistant["info"]["time"]["created"]


@pytest.mark.parametrize("agent", ["build", "plan"])
def test_opencode_run_attach_with_an_agent(
    server: RoostServer, llm: ScriptedLLM, tmp_path: Path, agent: str
) -> None:
    llm.enqueue(text_turn(f"answered by the {agent} agent"))
    done = opencode_run(server, tmp_path, "--agent", agent, "hello")
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"answered by the {agent} agent" in done.stdout
    # The CLI checks the agent against GET /agent and falls back (with a warning) if unknown.
    assert "not found" not in done.stderr.lower()
    (session,) = server.get("/session").json()
    user, assistant = server.messages(session["id"])
    assert user["info"]["agent"] == agent
    assert assistant["info"]["agent"] == agent


def test_opencode_run_attach_with_a_file_sends_its_content_to_the_model(
    server: RoostServer, llm: ScriptedLLM, tmp_path: Path
) -> None:
    (server.directory / "notes.txt").write_text("the launch code is 4096\n")
    llm.enqueue(text_turn("it holds a launch code"))
    notes = str(server.directory / "notes.txt")
    done = opencode_run(server, tmp_path, "describe the file", "-f", notes)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "it holds a launch code" in done.stdout
    [user] = [m for m in llm.requests[-1]["messages"] if m["role"] == "user"]
    assert "describe the file" in user["content"]
    assert "the launch code is 4096" in user["content"]


def test_opencode_run_attach_runs_the_init_command(
    server: RoostServer, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.enqueue(text_turn("AGENTS.md written"))
    done = opencode_run(server, tmp_path, "--command", "init", "keep it short")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "AGENTS.md written" in done.stdout
    [user] = [m for m in llm.requests[-1]["messages"] if m["role"] == "user"]
    assert "AGENTS.md" in user["content"] and str(server.directory) in user["content"]
    assert "keep it short" in user["content"]


def test_opencode_run_continues_a_long_compacted_session_from_its_summary(
    project: Path, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """``opencode run --attach --session`` on a session of 1,000 finished turns compacted once:
    the CLI prints the answer, and the model is sent the summary and what follows it, while
    the store keeps all 2,000 earlier messages (the turn reads from the summary on,
    ``engine/compaction.turn_rows``)."""
    db_path = tmp_path / "long.db"
    sid = asyncio.run(fill_long_session(db_path, 1000, str(project)))
    server = RoostServer(project, db_path).start()
    try:
        llm.enqueue(text_turn("SUMMARY OF A THOUSAND TURNS"), text_turn("the long session goes on"))
        model = {"providerID": PROVIDER_ID, "modelID": MODEL_ID}
        compacted = server.post(f"/session/{sid}/summarize", json=model)
        assert compacted.status_code == 200 and compacted.json() is True
        done = opencode_run(server, tmp_path, "--session", sid, "what comes next?")
        assert done.returncode == 0, done.stderr + done.stdout
        assert "the long session goes on" in done.stdout
        sent = llm.requests[-1]["messages"]
        assert "SUMMARY OF A THOUSAND TURNS" in str(sent)
        assert "question 999 " not in str(sent) and len(sent) < 10
        assert len(server.messages(sid)) == 2000 + 2 + 2
    finally:
        server.close()
