"""Session wire shapes (OpenAPI schemas ``Session`` and ``SessionStatus``).

Projections store these dicts as JSON and the API serves them unchanged, so the builders here
are the one place their fields are spelled.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from roost import __version__
from roost.model.permission import Rule

Session = dict[str, Any]
"""OpenAPI ``Session``: ``id``, ``slug``, ``projectID``, ``directory``, ``title``, ``version``,
``time: {created, updated}`` (Unix epoch ms), optional ``parentID``, ``agent``, ``model``."""

_ADJECTIVES = (
    "brave",
    "calm",
    "eager",
    "gentle",
    "jolly",
    "kind",
    "lucky",
    "quiet",
    "swift",
    "tidy",
    "witty",
    "bold",
    "bright",
    "clever",
    "happy",
    "proud",
)
_NOUNS = (
    "island",
    "river",
    "forest",
    "meadow",
    "harbor",
    "canyon",
    "eagle",
    "falcon",
    "otter",
    "comet",
    "garden",
    "lantern",
    "orchard",
    "summit",
    "valley",
    "willow",
)


def default_title(created_ms: int, *, child: bool = False) -> str:
    """OpenCode's placeholder title: ``New session - 2026-11-22T07:19:15.661Z``."""
    stamp = dt.datetime.fromtimestamp(created_ms / 1000, tz=dt.UTC)
    iso = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created_ms % 1000:03d}Z"
    return f"{'Child session' if child else 'New session'} - {iso}"


def slug_for(session_id: str) -> str:
    """A readable two-word slug derived from the id's random tail (stable per session)."""
    tail = session_id[-14:]
    a = sum(ord(c) for c in tail[:7]) % len(_ADJECTIVES)
    n = sum(ord(c) for c in tail[7:]) % len(_NOUNS)
    return f"{_ADJECTIVES[a]}-{_NOUNS[n]}"


def new_session(
    session_id: str,
    *,
    directory: str,
    project_id: str,
    created_ms: int,
    title: str | None = None,
    parent_id: str | None = None,
    agent: str | None = None,
    model: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    permission: list[Rule] | None = None,
) -> Session:
    """A new ``Session`` object, as ``session.created`` carries it."""
    info: Session = {
        "id": session_id,
        "slug": slug_for(session_id),
        "projectID": project_id,
        "directory": directory,
        "path": "",
        "cost": 0,
        "tokens": empty_tokens(),
        "title": title or default_title(created_ms, child=parent_id is not None),
        "version": __version__,
        "time": {"created": created_ms, "updated": created_ms},
    }
    if parent_id is not None:
        info["parentID"] = parent_id
    if agent is not None:
        info["agent"] = agent
    if model is not None:
        info["model"] = model
    if metadata is not None:
        info["metadata"] = metadata
    if permission is not None:
        info["permission"] = permission
    return info


def empty_tokens() -> dict[str, Any]:
    """Token counters at zero, in the shape of ``Session.tokens``."""
    return {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}


IDLE: dict[str, Any] = {"type": "idle"}
BUSY: dict[str, Any] = {"type": "busy"}


def retry_status(attempt: int, message: str, next_ms: int) -> dict[str, Any]:
    """``SessionStatus`` of type ``retry``: ``next`` is the Unix epoch ms of the next try."""
    return {"type": "retry", "attempt": attempt, "message": message, "next": next_ms}
