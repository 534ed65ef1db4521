"""Builders for store-level tests: wire dicts for sessions, messages and parts."""

from __future__ import annotations

from typing import Any

from roost.model import message as msg
from roost.model.session import new_session


def session_info(sid: str, *, created_ms: int = 1_000, parent_id: str | None = None) -> Any:
    return new_session(
        sid, directory="/p", project_id="global", created_ms=created_ms, parent_id=parent_id
    )


def user_info(mid: str, sid: str, created_ms: int = 1_000) -> Any:
    return msg.user_message(
        mid, sid, created_ms=created_ms, agent="build", provider_id="p", model_id="m"
    )


def text(pid: str, sid: str, mid: str, body: str = "") -> Any:
    return msg.text_part(pid, sid, mid, body)
