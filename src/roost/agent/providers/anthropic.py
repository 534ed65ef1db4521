"""Anthropic Messages streaming through the official ``anthropic`` SDK.

Serves ``@ai-sdk/anthropic`` providers. Requests arrive in OpenAI's chat shape and are converted
here (Anthropic API reference, "Messages"): system messages become the ``system`` parameter,
assistant ``tool_calls`` become ``tool_use`` blocks, ``tool`` results become ``tool_result``
blocks in a user message, and consecutive messages of one role are merged, since the API wants
user and assistant turns to alternate. Stream events ("Streaming Messages") become
``ProviderEvent``s: ``thinking_delta`` is reasoning, and each ``tool_use`` block is assembled from
its ``input_json_delta`` fragments.

Usage is reported the API's way: ``input_tokens`` counts only uncached input (OpenCode's
``tokens.input`` for Anthropic means the same), ``cache_read_tokens`` the cache hits; cache writes
have no field in ``Usage`` and are dropped.

The base URL may end in ``/v1`` (OpenCode's convention for ``baseURL``) or not (the SDK's, which
appends ``/v1/messages`` itself). As in ``openai_compat``, the SDK's own retries are off, every
failure becomes ``ProviderError``, and the SDK is imported when the first client is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Final

from roost.agent.providers.base import (
    ModelRequest,
    ProviderEvent,
    ReasoningDelta,
    StreamEnd,
    TextDelta,
    ToolCallRequest,
    Usage,
)
from roost.errors import ProviderError

_REQUEST_TIMEOUT_S = 600.0
_CONNECT_TIMEOUT_S = 10.0

DEFAULT_MAX_TOKENS: Final = 8192
"""``max_tokens`` (required by the API) for models whose id suggests no other limit."""

_MAX_TOKENS_BY_MODEL: Final = (
    (re.compile(r"claude-3-5-"), 8192),
    (re.compile(r"claude-3-7-"), 32_000),
    (re.compile(r"claude-3-"), 4096),
    (re.compile(r"claude-(opus|sonnet|haiku)-[4-9]"), 32_000),
)
"""First match wins. Claude 3 models stop at 4096 output tokens, 3.5 at 8192; later ones allow
more, capped at 32000 as OpenCode caps output (``OUTPUT_TOKEN_MAX``)."""

_FINISH_REASONS: Final = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
}
"""Anthropic ``stop_reason`` → the OpenAI finish reasons the loop speaks; others pass as given."""

_STATUS_BY_ERROR_TYPE: Final = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status each error ``type`` has (API reference, "Errors"); an ``error`` event in a
stream arrives on a 200 response, so its status is found from its type."""

_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
"""The API requires tool-use ids to match ``^[a-zA-Z0-9_-]+$``; other providers' ids may not."""


def max_tokens_for(model_id: str) -> int:
    """The ``max_tokens`` sent for ``model_id``."""
    lowered = model_id.lower()
    return next(
        (limit for pattern, limit in _MAX_TOKENS_BY_MODEL if pattern.search(lowered)),
        DEFAULT_MAX_TOKENS,
    )


def to_anthropic_messages(
    messages: list[dict[str, Any]],
) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI chat messages → ``(system, messages)`` for the Messages API.

    System messages are joined into ``system``. Messages left without content (empty text) are
    dropped, and what is left is merged so that user and assistant roles alternate; tool results
    merged with a following user message stay first, as the API requires.
    """
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            system.append(_plain_text(message.get("content")))
            continue
        if role == "assistant":
            blocks = _assistant_blocks(message)
        elif role == "tool":
            blocks = [_tool_result_block(message)]
        else:
            blocks = _content_blocks(message.get("content"))
        if not blocks:
            continue
        wire_role = "assistant" if role == "assistant" else "user"
        if out and out[-1]["role"] == wire_role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": wire_role, "content": blocks})
    return "\n\n".join(s for s in system if s), out


def to_anthropic_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI function tools (``{"type": "function", "function": {…}}``) → Anthropic tools."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        function = tool.get("function", tool)
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        converted = {"name": function["name"], "input_schema": schema}
        if function.get("description"):
            converted["description"] = function["description"]
        out.append(converted)
    return out


def _plain_text(content: Any) -> str:  # Any: OpenAI content is a string, a part list or null
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _content_blocks(content: Any) -> list[dict[str, Any]]:  # Any: as in _plain_text
    """Message content → a text block (empty or blank text is left out: the API rejects it),
    then one ``image`` / ``document`` block per OpenAI ``image_url`` / ``file`` part."""
    text = _plain_text(content)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text.strip() else []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "image_url":
            blocks.append({"type": "image", "source": _base64_source(part["image_url"]["url"])})
        elif part.get("type") == "file":
            source = _base64_source(part["file"]["file_data"])
            blocks.append({"type": "document", "source": source})
    return blocks


def _base64_source(data_url: str) -> dict[str, Any]:
    """An Anthropic ``base64`` source from a ``data:<mime>;base64,<data>`` URL."""
    header, _, data = data_url.partition(",")
    return {"type": "base64", "media_type": header[5:].split(";")[0], "data": data}


def _assistant_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = _content_blocks(message.get("content"))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_id(str(call.get("id", ""))),
                "name": function.get("name", ""),
                "input": _parse_arguments(function.get("arguments") or ""),
            }
        )
    return blocks


def _tool_result_block(message: dict[str, Any]) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": _tool_id(str(message.get("tool_call_id", ""))),
    }
    output = _plain_text(message.get("content"))
    if output:
        block["content"] = output
    return block


def _tool_id(call_id: str) -> str:
    return _TOOL_ID_UNSAFE.sub("_", call_id) or "toolu_missing"


def _parse_arguments(raw: str | dict[str, Any]) -> dict[str, Any]:
    """Tool arguments JSON → the ``input`` object (a non-object is wrapped, bad JSON kept raw)."""
    if isinstance(raw, dict):
        return raw
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def _sdk_base_url(base_url: str | None) -> str | None:
    if not base_url:
        return None  # the SDK's default (or ANTHROPIC_BASE_URL)
    return base_url.rstrip("/").removesuffix("/v1")


def _is_retryable(status: int | None) -> bool:
    return status is None or status == 408 or status == 429 or status >= 500


def _error_of(body: object) -> dict[str, Any]:
    """The ``error`` object of an Anthropic error body, or ``{}``."""
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _body_text(body: object) -> str | None:
    """The error body as text: the SDK keeps it parsed when it was JSON."""
    if body is None or isinstance(body, str):
        return body
    return json.dumps(body)


def _translate(exc: Exception, url: str) -> ProviderError:
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        error = _error_of(exc.body)
        message = str(error.get("message") or exc.message)
        status: int | None = exc.status_code
        retryable = _is_retryable(status)
        if exc.status_code < 400:  # an ``error`` event mid-stream: the response said 200
            status = _STATUS_BY_ERROR_TYPE.get(str(error.get("type")))
            retryable = status is not None and _is_retryable(status)
        return ProviderError(
            message,
            status_code=status,
            retryable=retryable,
            response_body=_body_text(exc.body),
            response_headers={k.lower(): v for k, v in exc.response.headers.items()},
            url=url,
        )
    if isinstance(exc, anthropic.AnthropicError) and not isinstance(
        exc, anthropic.APIConnectionError
    ):
        return ProviderError(str(exc), retryable=False, url=url)
    # APIConnectionError (timeouts included), or the transport failing mid-stream: the SDK lets
    # httpx2's errors out of a stream's body unwrapped.
    return ProviderError(f"connection to the provider failed: {exc}", retryable=True, url=url)


class AnthropicProvider:
    """A ``Provider`` for one configured base URL and key; reuses one HTTP connection pool."""

    def __init__(self, *, base_url: str | None, api_key: str | None) -> None:
        import anthropic
        import anthropic.types
        import httpx2  # the SDK's transport; its errors can escape a stream unwrapped

        self._errors: tuple[type[Exception], ...] = (
            anthropic.AnthropicError,
            httpx2.TransportError,
        )
        self._message_cls = anthropic.types.Message
        self._stream_cls = anthropic.AsyncStream[anthropic.types.RawMessageStreamEvent]
        self._client = anthropic.AsyncAnthropic(
            base_url=_sdk_base_url(base_url),
            api_key=api_key or "none",
            max_retries=0,
            timeout=anthropic.Timeout(_REQUEST_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S),
        )
        self._url = f"{str(self._client.base_url).rstrip('/')}/v1/messages"

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.close()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        """Stream one request; see ``Provider``."""
        system, messages = to_anthropic_messages(request.messages)
        body: dict[str, Any] = {
            "model": request.model_id,
            "max_tokens": max_tokens_for(request.model_id),
            "messages": messages,
            "stream": True,
        }
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = to_anthropic_tools(request.tools)
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        acc = _Accumulator()
        try:
            # The SDK's documented generic ``post`` (README, "Undocumented endpoints") sends the
            # body as built, as in openai_compat; ``messages.create`` is typed for the SDK's own
            # TypedDicts and sends the same request.
            stream = await self._client.post(
                "/v1/messages",
                body=body,
                cast_to=self._message_cls,
                stream=True,
                stream_cls=self._stream_cls,
            )
            async with stream:
                async for event in stream:
                    for out in acc.feed(event):
                        yield out
        except self._errors as exc:
            raise _translate(exc, self._url) from exc
        for call in acc.tool_calls():
            yield call
        if acc.finish is None:
            raise ProviderError(
                "the provider closed the stream without finishing", retryable=True, url=self._url
            )
        yield StreamEnd(acc.finish, acc.usage)


@dataclass
class _PendingCall:
    call_id: str
    name: str
    initial_input: dict[str, Any]
    fragments: list[str] = field(default_factory=list)


class _Accumulator:
    """Folds Messages stream events: yields text and thinking as they come, assembles
    ``tool_use`` blocks by ``index``, and keeps the latest (cumulative) usage."""

    def __init__(self) -> None:
        self.calls: dict[int, _PendingCall] = {}
        self.finish: str | None = None
        self.usage = Usage()

    def feed(self, event: Any) -> list[ProviderEvent]:
        # Any: one of the SDK's RawMessageStreamEvent models, told apart by ``type``.
        kind = event.type
        if kind == "message_start":
            self._read_usage(event.message.usage)
        elif kind == "content_block_start":
            return self._start(event.index, event.content_block)
        elif kind == "content_block_delta":
            return self._delta(event.index, event.delta)
        elif kind == "message_delta":
            if event.delta.stop_reason is not None:
                reason = str(event.delta.stop_reason)
                self.finish = _FINISH_REASONS.get(reason, reason)
            self._read_usage(event.usage)
        return []

    def tool_calls(self) -> list[ToolCallRequest]:
        return [
            ToolCallRequest(
                call.call_id,
                call.name,
                _parse_arguments("".join(call.fragments)) if call.fragments else call.initial_input,
            )
            for _, call in sorted(self.calls.items())
        ]

    def _start(self, index: int, block: Any) -> list[ProviderEvent]:  # Any: a content block
        if block.type == "tool_use":
            self.calls[index] = _PendingCall(block.id, block.name, dict(block.input or {}))
        elif block.type == "text" and block.text:
            return [TextDelta(block.text)]
        elif block.type == "thinking" and block.thinking:
            return [ReasoningDelta(block.thinking)]
        return []

    def _delta(self, index: int, delta: Any) -> list[ProviderEvent]:  # Any: a block delta
        if delta.type == "text_delta" and delta.text:
            return [TextDelta(delta.text)]
        if delta.type == "thinking_delta" and delta.thinking:
            return [ReasoningDelta(delta.thinking)]
        if delta.type == "input_json_delta" and index in self.calls:
            self.calls[index].fragments.append(delta.partial_json)
        return []  # signature and citation deltas carry nothing the loop shows

    def _read_usage(self, usage: Any) -> None:  # Any: the SDK's Usage or MessageDeltaUsage
        details = getattr(usage, "output_tokens_details", None)
        self.usage = replace(
            self.usage,
            input_tokens=_count(usage, "input_tokens", self.usage.input_tokens),
            output_tokens=_count(usage, "output_tokens", self.usage.output_tokens),
            reasoning_tokens=_count(details, "thinking_tokens", self.usage.reasoning_tokens),
            cache_read_tokens=_count(
                usage, "cache_read_input_tokens", self.usage.cache_read_tokens
            ),
        )


def _count(source: Any, name: str, previous: int) -> int:  # Any: an SDK usage model or None
    """A usage field, or ``previous`` when absent: ``message_delta`` repeats only some fields."""
    value = getattr(source, name, None)
    return int(value) if value is not None else previous
