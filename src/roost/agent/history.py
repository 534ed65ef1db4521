"""Stored messages → the chat messages a provider sees.

Input is the session's projected messages as wire dicts (``{"info": Message, "parts": [Part]}``,
oldest first); output is OpenAI Chat Completions ``messages``. Parts flagged ``ignored`` and
assistant messages that produced nothing (e.g. aborted before any text) are left out.

Every tool call sent back is followed by exactly one tool result, so the provider always sees
valid pairs: a tool part that never finished (aborted or interrupted) is answered with an error.
"""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from typing import Any

from roost.agent import attachments

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


def _tool_result(part: dict[str, Any]) -> str:
    state = part.get("state") or {}
    status = state.get("status")
    if status == "completed":
        return str(state.get("output", ""))
    if status == "error":
        return f"Error: {state.get('error', 'the tool failed')}"
    return "Error: the tool call did not finish (aborted or interrupted)"


def _assistant(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    text = _text_of(parts)
    calls = [p for p in parts if p.get("type") == "tool"]
    if not calls:
        return [{"role": "assistant", "content": text}] if text else []
    out: list[dict[str, Any]] = [
        {
            "role": "assistant",
            "content": text or None,
            "tool_calls": [
                {
                    "id": p["callID"],
                    "type": "function",
                    "function": {
                        "name": p["tool"],
                        "arguments": json.dumps((p.get("state") or {}).get("input") or {}),
                    },
                }
                for p in calls
            ],
        }
    ]
    out.extend(
        {"role": "tool", "tool_call_id": p["callID"], "content": _tool_result(p)} for p in calls
    )
    return out


def to_chat_messages(system: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Build the provider's ``messages`` list (OpenAI chat format)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for m in messages:
        info, parts = m["info"], m["parts"]
        if info["role"] == "user":
            media = attachments.content_blocks(parts)
            # Separate parts (a prompt and an attached file's synthetic read) stay apart.
            text = "\n\n".join(
                p["text"] for p in parts if p.get("type") == "text" and not p.get("ignored")
            )
            content: str | list[dict[str, Any]] = (
                [{"type": "text", "text": text}, *media] if media else text
            )
            out.append({"role": "user", "content": content})
        else:
            out.extend(_assistant(parts))
    return out
