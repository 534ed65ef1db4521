"""Message and part wire shapes (OpenAPI ``UserMessage``, ``AssistantMessage``, ``Part``).

Builders return plain dicts: they are stored as JSON and served as they are.
"""

from __future__ import annotations

from typing import Any

from roost.model.session import empty_tokens

Message = dict[str, Any]
Part = dict[str, Any]


def user_message(
    message_id: str,
    session_id: str,
    *,
    created_ms: int,
    agent: str,
    provider_id: str,
    model_id: str,
    system: str | None = None,
    tools: dict[str, bool] | None = None,
    variant: str | None = None,
) -> Message:
    """A ``UserMessage``."""
    model: dict[str, Any] = {"providerID": provider_id, "modelID": model_id}
    if variant is not None:
        model["variant"] = variant
    info: Message = {
        "id": message_id,
        "sessionID": session_id,
        "role": "user",
        "time": {"created": created_ms},
        "summary": {"diffs": []},
        "agent": agent,
        "model": model,
    }
    if system is not None:
        info["system"] = system
    if tools is not None:
        info["tools"] = tools
    return info


def assistant_message(
    message_id: str,
    session_id: str,
    *,
    parent_id: str,
    created_ms: int,
    agent: str,
    provider_id: str,
    model_id: str,
    directory: str,
) -> Message:
    """A new, not yet completed ``AssistantMessage``."""
    return {
        "id": message_id,
        "sessionID": session_id,
        "role": "assistant",
        "time": {"created": created_ms},
        "parentID": parent_id,
        "modelID": model_id,
        "providerID": provider_id,
        "mode": agent,
        "agent": agent,
        "path": {"cwd": directory, "root": directory},
        "cost": 0,
        "tokens": empty_tokens(),
    }


def summary_message(
    message_id: str,
    session_id: str,
    *,
    parent_id: str,
    created_ms: int,
    provider_id: str,
    model_id: str,
    directory: str,
) -> Message:
    """A new ``AssistantMessage`` that will hold a compaction's summary (``summary: true``,
    ``mode`` and ``agent`` ``"compaction"``, as OpenCode writes it)."""
    info = assistant_message(
        message_id,
        session_id,
        parent_id=parent_id,
        created_ms=created_ms,
        agent="compaction",
        provider_id=provider_id,
        model_id=model_id,
        directory=directory,
    )
    info["summary"] = True
    return info


def compaction_part(
    part_id: str,
    session_id: str,
    message_id: str,
    *,
    auto: bool,
    overflow: bool | None = None,
    tail_start_id: str | None = None,
) -> Part:
    """A ``CompactionPart``: marks its user message as a request to compact the session.

    Args:
        auto: Roost decided to compact (the context window filled or the provider refused a
            request), rather than ``POST /session/{id}/summarize`` without ``auto``.
        overflow: Set when a provider's refusal of a request as too long was the reason.
        tail_start_id: The first message the summary leaves out, kept verbatim after it.
    """
    part: Part = {
        "id": part_id,
        "sessionID": session_id,
        "messageID": message_id,
        "type": "compaction",
        "auto": auto,
    }
    if overflow is not None:
        part["overflow"] = overflow
    if tail_start_id is not None:
        part["tail_start_id"] = tail_start_id
    return part


def text_part(part_id: str, session_id: str, message_id: str, text: str, **extra: Any) -> Part:
    """A ``TextPart``; ``extra`` carries optional fields (``time``, ``synthetic``, …)."""
    return {
        "id": part_id,
        "sessionID": session_id,
        "messageID": message_id,
        "type": "text",
        "text": text,
        **extra,
    }


def reasoning_part(part_id: str, session_id: str, message_id: str, start_ms: int) -> Part:
    """An empty ``ReasoningPart`` whose text arrives as deltas."""
    return {
        "id": part_id,
        "sessionID": session_id,
        "messageID": message_id,
        "type": "reasoning",
        "text": "",
        "time": {"start": start_ms},
    }


def step_start_part(part_id: str, session_id: str, message_id: str) -> Part:
    """A ``StepStartPart``."""
    return {"id": part_id, "sessionID": session_id, "messageID": message_id, "type": "step-start"}


def step_finish_part(
    part_id: str, session_id: str, message_id: str, *, reason: str, tokens: dict[str, Any]
) -> Part:
    """A ``StepFinishPart`` with the step's token usage."""
    return {
        "id": part_id,
        "sessionID": session_id,
        "messageID": message_id,
        "type": "step-finish",
        "reason": reason,
        "cost": 0,
        "tokens": tokens,
    }


def patch_part(
    part_id: str, session_id: str, message_id: str, *, snapshot: str, files: list[str]
) -> Part:
    """A ``PatchPart``: the files a step changed (absolute paths) and the snapshot taken before
    it changed them (``hash``), from which revert restores them."""
    return {
        "id": part_id,
        "sessionID": session_id,
        "messageID": message_id,
        "type": "patch",
        "hash": snapshot,
        "files": files,
    }


def tokens(input_: int, output: int, reasoning: int = 0, cache_read: int = 0) -> dict[str, Any]:
    """Token usage in the shape of ``AssistantMessage.tokens``."""
    return {
        "total": input_ + output,
        "input": input_,
        "output": output,
        "reasoning": reasoning,
        "cache": {"read": cache_read, "write": 0},
    }


def aborted_error(message: str = "Aborted") -> dict[str, Any]:
    """``MessageAbortedError``."""
    return {"name": "MessageAbortedError", "data": {"message": message}}


def context_overflow_error(message: str, response_body: str | None = None) -> dict[str, Any]:
    """``ContextOverflowError``: the conversation does not fit the model's context window."""
    data: dict[str, Any] = {"message": message}
    if response_body is not None:
        data["responseBody"] = response_body
    return {"name": "ContextOverflowError", "data": data}


def unknown_error(message: str) -> dict[str, Any]:
    """``UnknownError``."""
    return {"name": "UnknownError", "data": {"message": message}}


def api_error(
    message: str,
    *,
    status_code: int | None,
    retryable: bool,
    response_body: str | None = None,
    response_headers: dict[str, str] | None = None,
    url: str | None = None,
) -> dict[str, Any]:
    """``APIError``: a provider answered with an error (or could not be reached)."""
    data: dict[str, Any] = {"message": message, "isRetryable": retryable}
    if status_code is not None:
        data["statusCode"] = status_code
    if response_headers:
        data["responseHeaders"] = response_headers
    if response_body is not None:
        data["responseBody"] = response_body
    if url is not None:
        data["metadata"] = {"url": url}
    return {"name": "APIError", "data": data}
