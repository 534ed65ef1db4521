"""MCP servers for end-to-end tests: config entries for ``mcp_server.py`` and a real HTTP one.

``local_entry`` is an ``McpLocalConfig`` that starts ``mcp_server.py`` over stdio;
``HttpMcpServer`` runs it as a streamable HTTP (or SSE) server on a loopback port and can be
SIGKILLed and started again on the same port; ``roost_with_mcp`` writes the project's
``opencode.json`` with an ``mcp`` section and starts ``roost serve``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.server import RoostServer, project_config
from tests.support.waiting import wait_for

MCP_SERVER = Path(__file__).with_name("mcp_server.py")
CONNECT_TIMEOUT_S = 60
"""A Python MCP server takes a second or two to start on a loaded machine."""


def local_entry(**extra: Any) -> dict[str, Any]:
    """An ``McpLocalConfig`` running ``mcp_server.py`` over stdio."""
    return {"type": "local", "command": [sys.executable, str(MCP_SERVER), "stdio"], **extra}


def roost_with_mcp(
    project: Path, tmp_path: Path, llm_url: str, mcp: dict[str, Any], **config: Any
) -> RoostServer:
    """``roost serve`` on ``project`` with ``mcp`` configured (already started)."""
    (project / "opencode.json").write_text(json.dumps(project_config(llm_url, mcp=mcp, **config)))
    return RoostServer(project, tmp_path / "roost.db").start()


def mcp_status(server: RoostServer, name: str) -> dict[str, Any]:
    """``GET /mcp`` entry of one server."""
    found: dict[str, Any] = server.get("/mcp").json()[name]
    return found


def wait_status(
    server: RoostServer, name: str, status: str, timeout_s: float = CONNECT_TIMEOUT_S
) -> dict[str, Any]:
    """Poll ``GET /mcp`` until ``name`` has ``status``; returns the entry."""

    seen: list[dict[str, Any]] = []

    def probe() -> dict[str, Any] | None:
        seen.append(mcp_status(server, name))
        return seen[-1] if seen[-1]["status"] == status else None

    try:
        return wait_for(probe, timeout_s=timeout_s, what=f"MCP server {name} {status}")
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last status {seen[-1:]}") from None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class HttpMcpServer:
    """``mcp_server.py http PORT`` (or ``sse PORT``) as a subprocess on a fixed loopback port."""

    def __init__(self, kind: str = "http") -> None:
        self.kind = kind
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{'mcp' if self.kind == 'http' else 'sse'}"

    def start(self) -> HttpMcpServer:
        self.proc = subprocess.Popen(
            [sys.executable, str(MCP_SERVER), self.kind, str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("the MCP test server exited") from None
                time.sleep(0.1)
        raise TimeoutError("the MCP test server did not listen")

    def kill(self) -> None:
        """SIGKILL the server's process group."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()
