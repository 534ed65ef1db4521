"""A working day in OpenCode's own TUI (``opencode attach``) against a real Roost, in tmux.

The TUI runs in a tmux pane of fixed size; the tests type with ``send-keys`` and read the
screen with ``capture-pane``, and check what Roost stored and what the scripted LLM received.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compat.conftest import OPENCODE_BIN, require_node_modules
from tests.compat.test_opencode_cli import opencode_env
from tests.support.scripted_llm import ScriptedLLM, text_turn, tool_turn
from tests.support.server import RoostServer, project_config

pytestmark = [
    pytest.mark.compat,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

_SCREEN_TIMEOUT_S = 30.0


class Tui:
    """``opencode attach URL`` in a detached tmux session (160x45)."""

    def __init__(self, server: RoostServer, home: Path) -> None:
        require_node_modules()
        self.name = f"roost-tui-{uuid.uuid4().hex[:8]}"
        env = opencode_env(home)
        assignments = " ".join(
            f"{key}={shlex.quote(value)}"
            for key, value in env.items()
            if key.startswith(("HOME", "XDG_", "OPENCODE_", "NPM_", "npm_", "BUN_"))
        )
        command = f"env {assignments} {OPENCODE_BIN} attach {server.url}"
        subprocess.run(
            [
                *("tmux", "new-session", "-d", "-s", self.name, "-x", "160", "-y", "45"),
                *("-c", str(server.directory), command),
            ],
            check=True,
        )

    def screen(self) -> str:
        """What the pane shows now."""
        done = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return done.stdout

    def wait_for(self, text: str, timeout_s: float = _SCREEN_TIMEOUT_S) -> str:
        """Wait until ``text`` is on the screen; returns the screen."""
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise TimeoutError(f"{text!r} never appeared on the TUI's screen:\n{screen}")

    def type(self, text: str, *, enter: bool = True) -> None:
        """Type ``text`` (literally), then Enter."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True)
        if enter:
            time.sleep(0.3)  # let the prompt's autocomplete settle before Enter
            subprocess.run(["tmux", "send-keys", "-t", self.name, "Enter"], check=True)

    def press(self, key: str) -> None:
        """Press one key (tmux key name: ``Enter``, ``Escape``, ``C-x`` …)."""
        time.sleep(0.3)
        subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def tui(server: RoostServer, tmp_path: Path) -> Iterator[Tui]:
    home = tmp_path / "opencode-home"
    home.mkdir()
    session = Tui(server, home)
    try:
        session.wait_for("Ask anything")
        yield session
    finally:
        session.close()


def _only_session(server: RoostServer) -> str:
    [session] = server.get("/session").json()
    sid: str = session["id"]
    return sid


def test_a_prompt_is_answered_and_the_session_gets_a_generated_title(
    tui: Tui, server: RoostServer, llm: ScriptedLLM
) -> None:
    llm.aux_title = "Greeting the agent"
    llm.enqueue(text_turn("hello from roost"))
    tui.type("hi there")
    tui.wait_for("hello from roost")
    screen = tui.wait_for("Greeting the agent")  # the sidebar shows the session's title
    assert "15 tokens" in screen  # the context meter reads the session's tokens
    assert server.get("/session").json()[0]["title"] == "Greeting the agent"


def test_a_bang_command_runs_in_the_shell_and_shows_its_output(
    tui: Tui, server: RoostServer, llm: ScriptedLLM
) -> None:
    tui.type("!echo shell-$((6*7))")
    tui.wait_for("shell-42")
    assert llm.requests == []
    tools = [
        p for m in server.messages(_only_session(server)) for p in m["parts"] if p["type"] == "tool"
    ]
    assert tools[0]["state"]["output"] == "shell-42\n"


def test_compact_shows_the_summary(tui: Tui, server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(text_turn("first answer"))
    tui.type("remember the number 7")
    tui.wait_for("first answer")
    llm.enqueue(text_turn("SUMMARY: the user asked to remember 7"))
    tui.type("/compact")
    tui.wait_for("SUMMARY: the user asked to remember 7")
    messages = server.messages(_only_session(server))
    assert any(p["type"] == "compaction" for m in messages for p in m["parts"])
    assert any(m["info"].get("summary") is True for m in messages)


def test_init_runs_the_init_command(tui: Tui, server: RoostServer, llm: ScriptedLLM) -> None:
    llm.enqueue(text_turn("wrote AGENTS.md"))
    tui.type("/init", enter=False)
    tui.wait_for("create or update AGENTS.md")  # the autocomplete lists the server's command
    tui.press("Enter")
    if "/init" in tui.screen():  # the first Enter only completed the command's name
        tui.press("Enter")
    tui.wait_for("wrote AGENTS.md")
    [user] = [m for m in llm.requests[-1]["messages"] if m["role"] == "user"]
    assert "AGENTS.md" in user["content"] and str(server.directory) in user["content"]


def test_undo_restores_the_file_the_agent_wrote(
    tui: Tui, server: RoostServer, llm: ScriptedLLM
) -> None:
    target = server.directory / "notes.md"
    target.write_text("original\n")
    llm.enqueue(
        tool_turn("write", {"filePath": str(target), "content": "rewritten by the agent\n"}),
        text_turn("rewrote notes.md"),
    )
    tui.type("rewrite notes.md")
    tui.wait_for("rewrote notes.md")
    assert target.read_text() == "rewritten by the agent\n"
    tui.type("/undo")
    deadline = time.monotonic() + _SCREEN_TIMEOUT_S
    while target.read_text() != "original\n" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert target.read_text() == "original\n"
    assert "revert" in server.get(f"/session/{_only_session(server)}").json()
    # The TUI puts the reverted prompt back into the editor and offers ctrl+x r to redo.
    tui.wait_for("1 message reverted")
    tui.press("C-x")
    tui.press("r")
    deadline = time.monotonic() + _SCREEN_TIMEOUT_S
    while target.read_text() != "rewritten by the agent\n" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert target.read_text() == "rewritten by the agent\n"


def test_dismissing_a_question_ends_the_turn(
    tui: Tui, server: RoostServer, llm: ScriptedLLM
) -> None:
    options = [{"label": "Red", "description": "warm"}, {"label": "Blue", "description": "cool"}]
    question = {"question": "Pick a colour", "header": "Colour", "options": options}
    llm.enqueue(tool_turn("question", {"questions": [question]}), text_turn("should not run"))
    tui.type("ask me")
    tui.wait_for("esc dismiss")
    tui.press("Escape")
    sid = _only_session(server)
    messages = server.wait_idle(sid)
    [part] = [p for m in messages for p in m["parts"] if p["type"] == "tool"]
    assert part["state"]["status"] == "error"
    assert len(llm.requests) == 1, "no model request after the dismissal"


@pytest.fixture
def asking(project: Path, llm: ScriptedLLM, tmp_path: Path) -> Iterator[tuple[RoostServer, Tui]]:
    """A server whose config asks before bash, and the TUI attached to it."""
    config = project_config(llm.base_url, permission={"bash": "ask"})
    (project / "opencode.json").write_text(json.dumps(config))
    srv = RoostServer(project, tmp_path / "ask.db").start()
    home = tmp_path / "opencode-home"
    home.mkdir()
    session = Tui(srv, home)
    try:
        session.wait_for("Ask anything")
        yield srv, session
    finally:
        session.close()
        srv.close()


def test_rejecting_a_permission_ends_the_turn(
    asking: tuple[RoostServer, Tui], llm: ScriptedLLM
) -> None:
    server, tui = asking
    llm.enqueue(tool_turn("bash", {"command": "touch made-anyway"}), text_turn("should not run"))
    tui.type("make a file")
    tui.wait_for("Permission required")
    for _ in range(2):  # from "Allow once" over "Allow always" to "Reject"
        tui.press("Right")
    tui.press("Enter")
    sid = _only_session(server)
    messages = server.wait_idle(sid)
    [part] = [p for m in messages for p in m["parts"] if p["type"] == "tool"]
    assert part["state"]["status"] == "error" and "rejected" in part["state"]["error"]
    assert not (server.directory / "made-anyway").exists()
    assert len(llm.requests) == 1, "no model request after the rejection"


def test_the_at_picker_lists_matching_files(tui: Tui, server: RoostServer) -> None:
    (server.directory / "src").mkdir()
    (server.directory / "src" / "picker_target.py").write_text("x = 1\n")
    tui.type("look at @picker_tar", enter=False)
    tui.wait_for("src/picker_target.py")


def test_diff_opens_the_changes_without_crashing(tui: Tui, server: RoostServer) -> None:
    project = server.directory
    (project / "tracked.txt").write_text("before\n")
    for args in (["init", "-q"], ["add", "tracked.txt"], ["commit", "-q", "-m", "one"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=project, check=True
        )
    (project / "tracked.txt").write_text("after\n")
    tui.type("/diff", enter=False)
    tui.wait_for("diff")
    tui.press("Enter")
    screen = tui.wait_for("tracked.txt")
    assert "crashed" not in screen
