"""Stored messages → the chat messages a provider sees.

Input is the session's projected messages as wire dicts (``{"info": Message, "parts": [Part]}``,
oldest first); output is OpenAI Chat Completions ``messages``. Parts flagged ``ignored`` and
assistant messages that produced nothing (e.g. aborted before any text) are left out.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any

DEFAULT_SYSTEM_PROMPT = (
    "You are a coding agent running inside Roost, working in the user's project directory. "
    "Answer concisely and accurately. When you are unsure, say so."
)


def system_prompt(
    *,
    agent_prompt: str | None,
    directory: str,
    extra: str | None = None,
    instructions: list[str] | None = None,
) -> str:
    """The system prompt: agent prompt, environment, project instructions, request system."""
    sections = [agent_prompt or DEFAULT_SYSTEM_PROMPT]
    sections.append(
        "<env>\n"
        f"  Working directory: {directory}\n"
        f"  Platform: {platform.system().lower()}\n"
        f"  Today's date: {datetime.now(UTC).date().isoformat()}\n"
        "</env>"
    )
    sections.extend(instructions or [])
    if extra:
        sections.append(extra)
    return "\n\n".join(sections)


def _text_of(parts: list[dict[str, Any]]) -> str:
    return "".join(
        p.get("text", "") for p in parts if p.get("type") == "text" and not p.get("ignored")
    )


def to_chat_messages(system: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Build the provider's ``messages`` list (OpenAI chat format)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for m in messages:
        info, parts = m["info"], m["parts"]
        text = _text_of(parts)
        if info["role"] == "user":
            out.append({"role": "user", "content": text})
        elif text:
            out.append({"role": "assistant", "content": text})
    return out
