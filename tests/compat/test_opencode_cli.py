"""OpenCode's own CLI (``opencode run --attach``) against a real Roost process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.compat.conftest import OPENCODE_BIN, require_node_modules
from tests.support.scripted_llm import ScriptedLLM, text_turn
from tests.support.server import MODEL_ID, PROVIDER_ID, RoostServer

pytestmark = pytest.mark.compat


def opencode_env(home: Path) -> dict[str, str]:
    """A private HOME, no update checks or downloads, npm and bun pointed at a closed port
    (as ``../shared/bench/servers/opencode-serve.sh`` does)."""
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
        "NPM_CONFIG_REGISTRY": "http://127.0.0.1:9/",
        "npm_config_registry": "http://127.0.0.1:9/",
        "BUN_CONFIG_REGISTRY": "http://127.0.0.1:9/",
    }


def opencode_run(
    server: RoostServer, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``opencode run --attach URL -m scripted/scripted-model ARGS…``."""
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
        timeout=90,
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
    assert server.messages(sessions[0]["id"])[0]["parts"][0]["text"] == "hello"


def test_opencode_run_attach_with_an_agent(
    server: RoostServer, llm: ScriptedLLM, tmp_path: Path
) -> None:
    llm.enqueue(text_turn("planned by the plan agent"))
    done = opencode_run(server, tmp_path, "--agent", "plan", "make a plan")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "planned by the plan agent" in done.stdout
    session = server.get("/session").json()[0]
    assert server.messages(session["id"])[0]["info"]["agent"] == "plan"
