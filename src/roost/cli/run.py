"""``roost run "…"``: an HTTP client of a running (or freshly started) server.

It creates a session (or continues ``--session``), subscribes to ``/event``, admits the prompt
with ``prompt_async`` and prints the assistant's text deltas until ``session.idle``. A
``session.error`` is printed to stderr and makes the exit code 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import orjson
from httpx_sse import connect_sse

_START_TIMEOUT_S = 30.0


def _auth(env: dict[str, str]) -> httpx.BasicAuth | None:
    password = env.get("ROOST_SERVER_PASSWORD")
    if not password:
        return None
    return httpx.BasicAuth(env.get("ROOST_SERVER_USERNAME") or "opencode", password)


def _start_server(db: Path | None) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "roost", "serve", "--port", "0"]
    if db is not None:
        cmd += ["--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    timer = threading.Timer(_START_TIMEOUT_S, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            if "listening on " in line:
                return proc, line.rsplit("listening on ", 1)[1].strip()
    finally:
        timer.cancel()
    raise RuntimeError("the server did not start")


def run_prompt(
    text: str,
    *,
    attach: str | None,
    model: str | None,
    agent: str | None,
    session_id: str | None,
    db: Path | None,
) -> int:
    """Run one prompt; returns the process exit code."""
    proc = None
    url = attach
    if url is None:
        proc, url = _start_server(db)
    try:
        return _prompt(url.rstrip("/"), text, model=model, agent=agent, session_id=session_id)
    finally:
        if proc is not None:
            proc.terminate()
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


def _prompt(
    url: str, text: str, *, model: str | None, agent: str | None, session_id: str | None
) -> int:
    env = dict(os.environ)
    with httpx.Client(base_url=url, auth=_auth(env), timeout=None) as client:
        if session_id is None:
            created = client.post("/session", json={})
            created.raise_for_status()
            session_id = created.json()["id"]
        body: dict[str, Any] = {"parts": [{"type": "text", "text": text}]}
        if model:
            provider_id, _, model_id = model.partition("/")
            body["model"] = {"providerID": provider_id, "modelID": model_id}
        if agent:
            body["agent"] = agent
        with connect_sse(client, "GET", "/event") as source:
            events = source.iter_sse()
            next(events)  # server.connected: the subscription is live
            sent = client.post(f"/session/{session_id}/prompt_async", json=body)
            if sent.status_code != 204:
                print(f"roost: {sent.status_code} {sent.text}", file=sys.stderr)
                return 1
            return _print_answer(events, session_id)


def _print_answer(events: Any, session_id: str) -> int:
    """Print text deltas (only assistant parts stream) until the session goes idle."""
    code = 0
    for sse in events:
        frame = orjson.loads(sse.data)
        props = frame.get("properties", {})
        if props.get("sessionID") != session_id:
            continue
        kind = frame["type"]
        if kind == "message.part.delta" and props.get("field") == "text":
            sys.stdout.write(props["delta"])
            sys.stdout.flush()
        elif kind == "session.error":
            error = props.get("error") or {}
            message = (error.get("data") or {}).get("message") or error.get("name")
            print(f"\nroost: {error.get('name')}: {message}", file=sys.stderr)
            code = 1
        elif kind == "session.idle":
            print()
            return code
    return code
