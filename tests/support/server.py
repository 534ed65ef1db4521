"""A real ``roost serve`` process on a free loopback port, for end-to-end tests.

``RoostServer`` starts ``python -m roost serve --port 0`` in a project directory whose
``opencode.json`` points the ``scripted`` provider at a ``ScriptedLLM``, reads the bound URL from
the startup line, and talks HTTP to it. ``kill()`` sends SIGKILL; ``start()`` again reuses the
same port and database file, which is how crash tests restart the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

from roost.testing.scripted_llm import AUX_MODEL

PROVIDER_ID = "scripted"
MODEL_ID = "scripted-model"
_START_TIMEOUT_S = 30.0


def project_config(llm_base_url: str, **extra: Any) -> dict[str, Any]:
    """An ``opencode.json`` whose default model is the scripted LLM."""
    config: dict[str, Any] = {
        "model": f"{PROVIDER_ID}/{MODEL_ID}",
        # Titles go to the scripted LLM's auxiliary model, which answers by itself.
        "small_model": f"{PROVIDER_ID}/{AUX_MODEL}",
        "provider": {
            PROVIDER_ID: {
                "npm": "@ai-sdk/openai-compatible",
                "options": {"baseURL": llm_base_url, "apiKey": "test-key"},
                "models": {MODEL_ID: {}, "other-model": {}, AUX_MODEL: {}},
            }
        },
    }
    config.update(extra)
    return config


def prompt_body(text: str, **extra: Any) -> dict[str, Any]:
    """A ``prompt_async`` body with one text part."""
    return {"parts": [{"type": "text", "text": text}], **extra}


class RoostServer:
    """One ``roost serve`` subprocess (see module docstring).

    Attributes:
        url: ``http://127.0.0.1:PORT`` while running.
        db_path: The SQLite file; kept across ``kill()`` / ``start()``.
        directory: The project directory (the server's working directory).
    """

    def __init__(
        self,
        directory: Path,
        db_path: Path | str,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        prefix: list[str] | None = None,
    ) -> None:
        self.directory = directory
        self.db_path = db_path
        self.url = ""
        self.port = 0
        """0 until the first start; restarts reuse the port, as an operator's restart does."""
        self.proc: subprocess.Popen[str] | None = None
        self.log_lines: list[str] = []
        self._env = env or {}
        self._args = args or []
        self._prefix = prefix or []
        """Runs before the server's own command line (e.g. ``unshare`` into another host name)."""
        self.client = httpx.Client(timeout=30.0)

    # -- process control ---------------------------------------------------------------

    def start(self) -> RoostServer:
        """Start the process and wait until it prints its URL (it is then ready)."""
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(self.directory / ".xdg-config"),
            "XDG_DATA_HOME": str(self.directory / ".xdg-data"),
            **self._env,
        }
        env.pop("OPENAI_API_KEY", None)
        env.pop("ROOST_SERVER_PASSWORD", None) if "ROOST_SERVER_PASSWORD" not in self._env else None
        cmd = [
            *self._prefix,
            sys.executable,
            "-m",
            "roost",
            "serve",
            "--port",
            str(self.port),
            "--db",
            str(self.db_path),
            *self._args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        deadline = threading.Timer(_START_TIMEOUT_S, self.proc.kill)
        deadline.start()
        try:
            for line in self.proc.stdout:
                self.log_lines.append(line)
                if "listening on " in line:
                    self.url = line.rsplit("listening on ", 1)[1].strip()
                    self.port = int(self.url.rsplit(":", 1)[1])
                    break
        finally:
            deadline.cancel()
        if not self.url:
            raise RuntimeError("roost serve did not start:\n" + "".join(self.log_lines))
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        return self

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log_lines.append(line)

    def kill(self) -> None:
        """SIGKILL the server (no clean-up runs)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.url = ""

    def terminate(self, timeout_s: float = 15) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout_s)
        self.url = ""
        return code

    def close(self) -> None:
        """Stop the process if it runs and close the HTTP client."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.client.close()

    # -- HTTP ------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any request to the server."""
        return self.client.request(method, self.url + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def create_session(self, **body: Any) -> dict[str, Any]:
        """``POST /session``; asserts 200."""
        response = self.post("/session", json=body)
        assert response.status_code == 200, response.text
        created: dict[str, Any] = response.json()
        return created

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        """``GET /session/{id}/message``; asserts 200."""
        response = self.get(f"/session/{session_id}/message")
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    def wait_idle(self, session_id: str, timeout_s: float = 20) -> list[dict[str, Any]]:
        """Poll until the session is not busy and its last message is a completed assistant
        message (or carries an error); returns the messages."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = self.get("/session/status").json()
            msgs = self.messages(session_id)
            if session_id not in status and msgs and msgs[-1]["info"]["role"] == "assistant":
                info = msgs[-1]["info"]
                if "completed" in info["time"] or "error" in info:
                    return msgs
            time.sleep(0.05)
        raise TimeoutError(f"session {session_id} did not go idle")

    def prompt(self, session_id: str, text: str, **extra: Any) -> list[dict[str, Any]]:
        """``prompt_async`` (asserts 204), then ``wait_idle``."""
        response = self.post(f"/session/{session_id}/prompt_async", json=prompt_body(text, **extra))
        assert response.status_code == 204, response.text
        return self.wait_idle(session_id)

    def events(
        self, *, last_event_id: str | None = None, timeout_s: float = 20
    ) -> Iterator[tuple[str | None, dict[str, Any]]]:
        """Iterate ``(sse id, frame)`` from ``GET /event`` until the caller stops."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
        with (
            httpx.Client(timeout=httpx.Timeout(timeout_s)) as client,
            connect_sse(client, "GET", self.url + "/event", headers=headers) as source,
        ):
            for sse in source.iter_sse():
                yield (sse.id or None), json.loads(sse.data)
