"""MCP tools through a real server: real MCP servers (stdio and streamable HTTP) built with the
SDK, called by the scripted LLM; every failure ends as a visible tool error and an idle session.

Timings printed as ``MCP-TIMING`` lines are failure → terminal part (ms, from the part's own
``time.end``); they are reported, not asserted, except that a failure that has a cause must not
wait for the call's timeout.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.mcp_servers import (
    HttpMcpServer,
    alive,
    local_entry,
    mcp_status,
    roost_with_mcp,
    wait_status,
)
from tests.support.openapi import validate
from tests.support.scripted_llm import Delay, ScriptedLLM, ToolCall, Turn, text_turn, tool_turn
from tests.support.server import RoostServer, prompt_body
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e

QUESTION = {
    "questions": [
        {
            "question": "Carry on?",
            "header": "Next",
            "options": [
                {"label": "Yes", "description": "go on"},
                {"label": "No", "description": "stop"},
            ],
        }
    ]
}


def _tool_parts(server: RoostServer, sid: str) -> list[dict[str, Any]]:
    return [p for m in server.messages(sid) for p in m["parts"] if p["type"] == "tool"]


def _running_part(server: RoostServer, sid: str) -> dict[str, Any] | None:
    parts = _tool_parts(server, sid)
    return parts[-1] if parts and parts[-1]["state"]["status"] == "running" else None


def _pids(pid_file: Path) -> list[int]:
    return [int(p) for p in pid_file.read_text().split()] if pid_file.exists() else []


def _timing(case: str, failed_at_s: float, part: dict[str, Any]) -> int:
    """Print (and return) ms from ``failed_at_s`` (0: the call's start) to the part's end."""
    time_ = part["state"]["time"]
    elapsed_ms = int(time_["end"] - (failed_at_s * 1000 if failed_at_s else time_["start"]))
    print(f"MCP-TIMING {case}: {elapsed_ms} ms")
    return elapsed_ms


def _session_events(server: RoostServer, sid: str) -> list[dict[str, Any]]:
    seen = []
    for _, frame in server.events(last_event_id="0"):
        if frame["properties"].get("sessionID") == sid:
            seen.append(frame)
            if frame["type"] == "session.idle":
                break
    return seen


@pytest.fixture
def pid_file(tmp_path: Path) -> Path:
    return tmp_path / "mcp-pids"


@pytest.fixture
def echo(project: Path, tmp_path: Path, llm: ScriptedLLM, pid_file: Path) -> Iterator[RoostServer]:
    """Roost with one local server, ``echo``, connected; calls time out after 3 s
    (``experimental.mcp_timeout``; an entry's ``timeout`` would bound connecting too)."""
    entry = local_entry(
        environment={
            "MCP_TEST_PID_FILE": str(pid_file),
            "MCP_TEST_REFUSE_FILE": str(tmp_path / "refuse"),
            "ROOST_TEST_VAR": "{env:ROOST_TEST_SOURCE}",
        },
    )
    os.environ["ROOST_TEST_SOURCE"] = "from-the-environment"
    server = roost_with_mcp(
        project, tmp_path, llm.base_url, {"echo": entry}, experimental={"mcp_timeout": 3000}
    )
    try:
        wait_status(server, "echo", "connected")
        yield server
    finally:
        server.close()
        os.environ.pop("ROOST_TEST_SOURCE", None)


def test_an_mcp_tool_is_offered_under_its_sanitized_name_and_its_call_completes(
    echo: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(
        tool_turn("echo_text_upper-v1", {"text": "hello"}),
        tool_turn("echo_env", {"name": "ROOST_TEST_VAR"}),
        text_turn("done"),
    )
    sid = echo.create_session()["id"]
    echo.prompt(sid, "shout")
    upper, env = _tool_parts(echo, sid)
    assert upper["tool"] == "echo_text_upper-v1"
    assert upper["state"]["status"] == "completed"
    assert upper["state"]["output"] == "HELLO"
    assert upper["state"]["metadata"] == {"truncated": False}
    # Local servers run in the project directory, with {env:…} substituted in environment.
    assert env["state"]["output"] == f"from-the-environment {echo.directory}"
    offered = {t["function"]["name"]: t["function"] for t in llm.requests[0]["tools"]}
    schema = offered["echo_text_upper-v1"]["parameters"]
    assert schema["type"] == "object" and "text" in schema["properties"]
    assert offered["echo_text_upper-v1"]["description"] == "Upper-case the text."
    statuses = [
        f["properties"]["part"]["state"]["status"]
        for f in _session_events(echo, sid)
        if f["type"] == "message.part.updated"
        and f["properties"]["part"].get("callID") == upper["callID"]
    ]
    assert statuses == ["pending", "running", "completed"]


def test_images_resources_and_long_output_map_to_what_opencode_stores(
    echo: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(
        Turn(
            [
                ToolCall("echo_picture", {}),
                ToolCall("echo_resource", {}),
                ToolCall("echo_big", {"lines": 5000}),
            ]
        ),
        text_turn("seen"),
    )
    sid = echo.create_session()["id"]
    echo.prompt(sid, "show me")
    picture, resource, big = _tool_parts(echo, sid)
    assert picture["state"]["output"] == "a pixel"
    (image,) = picture["state"]["attachments"]
    assert image["type"] == "file" and image["mime"] == "image/png"
    assert image["url"].startswith("data:image/png;base64,")
    assert image["id"].startswith("prt") and image["messageID"] == picture["messageID"]
    assert resource["state"]["output"] == "resource text"
    (blob,) = resource["state"]["attachments"]
    assert blob["filename"] == "file:///pixel.png" and blob["mime"] == "image/png"
    metadata = big["state"]["metadata"]
    assert metadata["truncated"] is True
    assert "output truncated" in big["state"]["output"]
    assert Path(metadata["outputPath"]).read_text().count("\n") == 4999


def test_a_tool_that_raises_or_a_protocol_error_is_an_error_part_and_the_model_is_told(
    echo: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(
        Turn([ToolCall("echo_fail", {"message": "the disk is full"})]),
        tool_turn("echo_protocol_error", {}),
        text_turn("noted"),
    )
    sid = echo.create_session()["id"]
    msgs = echo.prompt(sid, "try")
    part, protocol = _tool_parts(echo, sid)
    assert part["state"]["status"] == "error"
    assert "the disk is full" in part["state"]["error"]
    assert protocol["state"]["status"] == "error"
    assert protocol["state"]["error"] == "MCP server 'echo': MCP error -32001: backend exploded"
    assert mcp_status(echo, "echo") == {"status": "connected"}
    told = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert "the disk is full" in told[0]["content"]
    assert msgs[-1]["info"]["finish"] == "stop"


def test_a_hanging_tool_ends_with_a_timeout_error_naming_the_server(
    echo: RoostServer, llm: ScriptedLLM
) -> None:
    llm.enqueue(tool_turn("echo_hang", {}), text_turn("gave up"))
    sid = echo.create_session()["id"]
    echo.prompt(sid, "wait")
    (part,) = _tool_parts(echo, sid)
    assert part["state"]["status"] == "error"
    assert part["state"]["error"] == "MCP server 'echo': tool 'hang' timed out after 3000 ms"
    _timing("hang past the 3000 ms timeout (from call start)", 0, part)
    assert mcp_status(echo, "echo") == {"status": "connected"}  # a slow tool is not a dead server


def test_a_server_killed_mid_call_ends_the_call_at_once_and_is_reconnected(
    echo: RoostServer, llm: ScriptedLLM, pid_file: Path
) -> None:
    (first_pid,) = _pids(pid_file)
    llm.enqueue(tool_turn("echo_hang", {}), text_turn("it died"))
    sid = echo.create_session()["id"]
    assert echo.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    wait_for(lambda: _running_part(echo, sid), what="the call running")
    killed_at = time.time()
    os.kill(first_pid, signal.SIGKILL)
    echo.wait_idle(sid)
    (part,) = _tool_parts(echo, sid)
    assert part["state"]["status"] == "error"
    assert part["state"]["error"] == "MCP server 'echo': Connection closed"
    assert _timing("stdio server SIGKILLed mid-call", killed_at, part) < 2000
    # The supervisor starts the server again and its tools come back.
    wait_for(lambda: len(_pids(pid_file)) == 2, timeout_s=60, what="a new server process")
    wait_status(echo, "echo", "connected")
    assert not alive(first_pid)
    llm.enqueue(tool_turn("echo_text_upper-v1", {"text": "back"}), text_turn("ok"))
    echo.prompt(sid, "again")
    assert _tool_parts(echo, sid)[-1]["state"]["output"] == "BACK"


def test_abort_during_an_mcp_call_is_terminal_and_idle_at_once(
    echo: RoostServer, llm: ScriptedLLM, pid_file: Path
) -> None:
    llm.enqueue(tool_turn("echo_hang", {}))
    sid = echo.create_session()["id"]
    assert echo.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    wait_for(lambda: _running_part(echo, sid), what="the call running")
    aborted_at = time.time()
    assert echo.post(f"/session/{sid}/abort").json() is True
    assert sid not in echo.get("/session/status").json()
    (part,) = _tool_parts(echo, sid)
    assert part["state"]["status"] == "error" and part["state"]["error"] == "aborted"
    assert _timing("abort during a call", aborted_at, part) < 2000
    assert mcp_status(echo, "echo") == {"status": "connected"}
    assert len(_pids(pid_file)) == 1  # the server outlives an aborted call


def test_field_report_not_connected_then_bash_then_a_question_ends_normally(
    echo: RoostServer, llm: ScriptedLLM, pid_file: Path, tmp_path: Path
) -> None:
    """The founding field report: an MCP server went "Not connected", a ``question`` soon
    after stayed ``running`` forever and locked the session."""
    llm.enqueue(
        Turn([Delay(2.0), ToolCall("echo_text_upper-v1", {"text": "x"})]),
        tool_turn("bash", {"command": "echo one"}),
        tool_turn("bash", {"command": "echo two"}),
        tool_turn("bash", {"command": "echo three"}),
        tool_turn("question", QUESTION),
        text_turn("all done"),
    )
    sid = echo.create_session()["id"]
    assert echo.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
    llm.wait_for_requests(1)  # the MCP tool was offered; now the server dies for good
    (tmp_path / "refuse").touch()
    os.kill(_pids(pid_file)[0], signal.SIGKILL)
    wait_status(echo, "echo", "failed")
    request = wait_for(lambda: echo.get("/question").json(), what="the question")[0]
    reply = echo.post(f"/question/{request['id']}/reply", json={"answers": [["Yes"]]})
    assert reply.json() is True
    msgs = echo.wait_idle(sid)
    mcp, *bashes, question = _tool_parts(echo, sid)
    assert mcp["state"]["status"] == "error"
    assert mcp["state"]["error"].startswith("MCP server 'echo' is not connected")
    _timing("call to a server that is not connected (from call start)", 0, mcp)
    assert [b["state"]["status"] for b in bashes] == ["completed"] * 3
    assert question["state"]["status"] == "completed"
    assert msgs[-1]["info"]["finish"] == "stop" and "error" not in msgs[-1]["info"]
    assert echo.get("/session/status").json() == {}
    # Its tools are no longer offered once it is gone.
    offered = {t["function"]["name"] for t in llm.requests[-1]["tools"]}
    assert "bash" in offered and not any(name.startswith("echo_") for name in offered)


def test_status_connect_disconnect_and_events(echo: RoostServer, pid_file: Path) -> None:
    assert echo.get("/mcp").json() == {"echo": {"status": "connected"}}
    assert echo.post("/mcp/echo/disconnect").json() is True
    assert mcp_status(echo, "echo") == {"status": "disabled"}
    wait_for(lambda: not alive(_pids(pid_file)[0]), what="the server stopped")
    assert echo.post("/mcp/echo/connect").json() is True
    assert mcp_status(echo, "echo") == {"status": "connected"}
    missing = echo.post("/mcp/nope/connect")
    assert missing.status_code == 404
    validate(missing.json(), "McpServerNotFoundError")
    auth = echo.post("/mcp/echo/auth")
    assert auth.status_code == 400 and "not supported" in auth.json()["error"]
    validate(auth.json(), "McpUnsupportedOAuthError")
    for status in echo.get("/mcp").json().values():
        validate(status, "MCPStatus")
    seen = []
    for _, frame in echo.events(last_event_id="0"):
        if frame["type"].startswith("mcp."):
            seen.append((frame["type"], frame["properties"]))
        if len(seen) == 6:
            break
    assert seen == [
        ("mcp.status", {"server": "echo", "status": {"status": "connected"}}),
        ("mcp.tools.changed", {"server": "echo"}),
        ("mcp.status", {"server": "echo", "status": {"status": "disabled"}}),
        ("mcp.tools.changed", {"server": "echo"}),
        ("mcp.status", {"server": "echo", "status": {"status": "connected"}}),
        ("mcp.tools.changed", {"server": "echo"}),
    ]


def test_a_server_added_at_run_time_and_a_broken_one(echo: RoostServer) -> None:
    added = echo.post(
        "/mcp", json={"name": "more.tools", "config": local_entry(environment={})}
    ).json()
    assert added["more.tools"] == {"status": "connected"}
    broken = echo.post(
        "/mcp", json={"name": "broken", "config": {"type": "local", "command": ["/nope/x"]}}
    ).json()
    assert broken["broken"] == {"status": "failed", "error": "command not found: /nope/x"}
    invalid = echo.post("/mcp", json={"name": "x", "config": {"type": "local", "cmd": ["a"]}})
    assert invalid.status_code == 400


@pytest.fixture
def web(tmp_path: Path) -> Iterator[HttpMcpServer]:
    server = HttpMcpServer().start()
    try:
        yield server
    finally:
        server.close()


def test_remote_server_over_streamable_http_is_called_and_reconnected_after_it_returns(
    project: Path, tmp_path: Path, llm: ScriptedLLM, web: HttpMcpServer
) -> None:
    sse = HttpMcpServer("sse").start()
    entry = {"type": "remote", "url": web.url, "oauth": False, "timeout": 20_000}
    sse_entry = {"type": "remote", "url": sse.url, "headers": {"X-Test": "1"}}
    server = roost_with_mcp(project, tmp_path, llm.base_url, {"web": entry, "old": sse_entry})
    try:
        wait_status(server, "web", "connected")
        wait_status(server, "old", "connected")  # streamable HTTP failed, SSE worked
        llm.enqueue(
            Turn(
                [
                    ToolCall("web_text_upper-v1", {"text": "remote"}),
                    ToolCall("old_text_upper-v1", {"text": "sse"}),
                ]
            ),
            tool_turn("web_hang", {}),
            text_turn("done"),
        )
        sid = server.create_session()["id"]
        assert (
            server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
        )
        wait_for(lambda: _running_part(server, sid), what="the hanging call")
        killed_at = time.time()
        web.kill()
        server.wait_idle(sid)
        upper, old, hang = _tool_parts(server, sid)
        assert upper["state"]["output"] == "REMOTE" and old["state"]["output"] == "SSE"
        assert hang["state"]["status"] == "error"
        assert hang["state"]["error"].startswith("MCP server 'web': ")
        _timing("HTTP server SIGKILLed mid-call", killed_at, hang)
        wait_status(server, "web", "failed")
        web.start()  # same port
        wait_status(server, "web", "connected")
        llm.enqueue(tool_turn("web_text_upper-v1", {"text": "back"}), text_turn("ok"))
        server.prompt(sid, "again")
        assert _tool_parts(server, sid)[-1]["state"]["output"] == "BACK"
    finally:
        server.close()
        sse.close()


def test_permissions_apply_to_mcp_tools_by_name_with_wildcards(
    project: Path, tmp_path: Path, llm: ScriptedLLM
) -> None:
    server = roost_with_mcp(
        project,
        tmp_path,
        llm.base_url,
        {"echo": local_entry(), "other": local_entry()},
        permission={"echo_*": "deny", "other_fail": "deny"},
    )
    try:
        wait_status(server, "echo", "connected")
        wait_status(server, "other", "connected")
        llm.enqueue(tool_turn("other_text_upper-v1", {"text": "a"}), text_turn("ok"))
        sid = server.create_session()["id"]
        server.prompt(sid, "go")
        offered = {t["function"]["name"] for t in llm.requests[0]["tools"]}
        assert "other_text_upper-v1" in offered
        assert "other_fail" not in offered
        assert not any(name.startswith("echo_") for name in offered)
    finally:
        server.close()


def test_a_disabled_server_is_not_started(
    project: Path, tmp_path: Path, llm: ScriptedLLM, pid_file: Path
) -> None:
    entry = local_entry(enabled=False, environment={"MCP_TEST_PID_FILE": str(pid_file)})
    server = roost_with_mcp(project, tmp_path, llm.base_url, {"echo": entry})
    try:
        assert server.get("/mcp").json() == {"echo": {"status": "disabled"}}
        assert not pid_file.exists()
    finally:
        server.close()


class _Unauthorized(BaseHTTPRequestHandler):
    def _refuse(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Bearer realm="test"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_remote_server_answering_401_needs_auth_unless_oauth_is_off(
    project: Path, tmp_path: Path, llm: ScriptedLLM
) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/mcp"
    mcp = {
        "locked": {"type": "remote", "url": url},
        "plain": {"type": "remote", "url": url, "oauth": False},
    }
    server = roost_with_mcp(project, tmp_path, llm.base_url, mcp)
    try:
        assert wait_status(server, "locked", "needs_auth") == {"status": "needs_auth"}
        failed = wait_for(
            lambda: s if "401" in (s := mcp_status(server, "plain")).get("error", "") else None,
            what="plain failed with the 401",
        )
        assert failed["status"] == "failed"
    finally:
        server.close()
        httpd.shutdown()


def test_abort_returns_at_once_even_when_the_remote_server_is_frozen(
    project: Path, tmp_path: Path, llm: ScriptedLLM, web: HttpMcpServer
) -> None:
    entry = {"type": "remote", "url": web.url, "oauth": False}
    server = roost_with_mcp(project, tmp_path, llm.base_url, {"web": entry})
    assert web.proc is not None
    try:
        wait_status(server, "web", "connected")
        llm.enqueue(tool_turn("web_hang", {}))
        sid = server.create_session()["id"]
        assert (
            server.post(f"/session/{sid}/prompt_async", json=prompt_body("go")).status_code == 204
        )
        wait_for(lambda: _running_part(server, sid), what="the call running")
        os.killpg(web.proc.pid, signal.SIGSTOP)  # accepts connections, answers nothing
        aborted_at = time.time()
        assert server.post(f"/session/{sid}/abort").json() is True
        assert sid not in server.get("/session/status").json()
        (part,) = _tool_parts(server, sid)
        assert part["state"]["status"] == "error"
        assert _timing("abort with the HTTP server SIGSTOPped", aborted_at, part) < 2000
    finally:
        os.killpg(web.proc.pid, signal.SIGCONT)
        server.close()
