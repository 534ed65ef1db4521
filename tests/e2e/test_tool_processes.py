"""What tool processes get from the server and what outlives it: no server descriptors, no
stray daemons after a stop or a crash, full outputs saved under Roost's own ids."""

from __future__ import annotations

import contextlib
import signal
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.scripted_llm import ScriptedLLM, ToolCall, Turn, text_turn, tool_turn
from tests.support.server import RoostServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e


def _tool_state(server: RoostServer, sid: str) -> dict[str, Any]:
    parts = [p for m in server.messages(sid) for p in m["parts"] if p["type"] == "tool"]
    assert parts, "no tool part"
    state: dict[str, Any] = parts[-1]["state"]
    return state


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill(pid: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).kill()


# Leaves the call's process group, and reports its pid only once it has left (the call's end
# kills the group, so a pid printed before ``setsid`` ran could die with it).
_DAEMON = (
    "rm -f daemon.pid; setsid sh -c 'echo $$ > daemon.pid; exec sleep 300' >/dev/null 2>&1 & "
    "while [ ! -s daemon.pid ]; do sleep 0.05; done; cat daemon.pid"
)


def _start_daemon(server: RoostServer, llm: ScriptedLLM) -> int:
    """A turn whose bash call leaves a daemon behind; returns the daemon's pid."""
    llm.enqueue(tool_turn("bash", {"command": _DAEMON}), text_turn("started"))
    sid = server.create_session()["id"]
    server.prompt(sid, "start a daemon")
    return int(_tool_state(server, sid)["output"].strip())


def test_a_tool_command_holds_only_stdin_stdout_and_stderr(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    # ``ls`` lists, from outside, the descriptors of the bash the tool started (``$$``). No
    # pipeline: bash would hold the pipe's ends for a moment while it starts the stages.
    command = "ls -l /proc/$$/fd; true"  # two commands: bash forks ls instead of exec-ing it
    llm.enqueue(tool_turn("bash", {"command": command}), text_turn("ok"))
    sid = server.create_session()["id"]
    server.prompt(sid, "list fds")

    output = _tool_state(server, sid)["output"]
    links = [line.split()[-3:] for line in output.splitlines() if " -> " in line]
    fds = {fd: target for fd, _, target in links}
    assert sorted(fds) == ["0", "1", "2"], output
    assert not any("socket" in target for target in fds.values()), output


def test_a_daemonized_tool_process_is_killed_when_the_server_stops(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    pid = _start_daemon(server, llm)
    try:
        assert _alive(pid), "the daemon outlives its call, as documented"
        assert server.terminate() in (0, -signal.SIGTERM)
        wait_for(lambda: not _alive(pid), timeout_s=5, what="the daemon to be killed on stop")
    finally:
        _kill(pid)


def test_a_daemonized_tool_process_is_killed_by_recovery_after_a_crash(
    server: RoostServer, llm: ScriptedLLM
) -> None:
    pid = _start_daemon(server, llm)
    try:
        server.kill()  # runs no clean-up: only a recovery can kill the daemon now
        # (that of any Roost starting on this host, a parallel test's included)
        server.start()
        wait_for(lambda: not _alive(pid), timeout_s=5, what="recovery to kill the daemon")
    finally:
        _kill(pid)


def test_full_output_is_saved_once_complete_under_a_roost_id(
    server: RoostServer, llm: ScriptedLLM, tmp_path: Path
) -> None:
    escape = tmp_path / f"escaped-{uuid.uuid4().hex}"
    hostile_id = "../" * 12 + str(escape).lstrip("/")
    llm.enqueue(
        Turn([ToolCall("bash", {"command": "seq 1 20000"}, call_id=hostile_id)]),
        text_turn("long"),
    )
    sid = server.create_session()["id"]
    server.prompt(sid, "count")

    state = _tool_state(server, sid)
    assert not escape.with_suffix(".txt").exists()
    assert state["metadata"]["truncated"] is True
    saved = [p for p in (tmp_path / "tool-output").iterdir()]
    assert len(saved) == 1 and saved[0].name.startswith("prt_"), saved
    assert saved[0].stat().st_size == 108_894  # all of `seq 1 20000`
    assert str(saved[0]) in state["output"]
