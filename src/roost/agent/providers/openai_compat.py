"""OpenAI Chat Completions streaming through the official ``openai`` SDK.

Serves both ``@ai-sdk/openai`` and ``@ai-sdk/openai-compatible`` providers. Reasoning text is
read from ``delta.reasoning_content`` (the field OpenAI-compatible servers such as DeepSeek and
vLLM use) or ``delta.reasoning``. SDK failures become ``ProviderError``; the SDK's own retries
are off, so the turn loop owns retry policy and can show it as ``retry`` status.

The SDK is imported when the first provider client is made, not at module import: it is half of
the server's import time and about 15 MiB, which a server that has not prompted yet (or serves
only reads) need not pay.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import openai

_REQUEST_TIMEOUT_S = 600.0
_CONNECT_TIMEOUT_S = 10.0


def _is_retryable(status: int | None) -> bool:
    return status is None or status == 408 or status == 429 or status >= 500


def _translate(exc: openai.OpenAIError, url: str) -> ProviderError:
    import openai

    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        try:
            body = exc.response.text
        except Exception:  # the body was already consumed by a stream
            body = None
        headers = {k.lower(): v for k, v in exc.response.headers.items()}
        return ProviderError(
            _message_of(exc),
            status_code=status,
            retryable=_is_retryable(status),
            response_body=body,
            response_headers=headers,
            url=url,
        )
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(f"connection to the provider failed: {exc}", retryable=True, url=url)
    # A mid-stream {"error": …} frame arrives as a bare APIError.
    return ProviderError(_message_of(exc), retryable=False, url=url)


def _message_of(exc: openai.OpenAIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return str(getattr(exc, "message", None) or exc)


class OpenAICompatProvider:
    """A ``Provider`` for one configured base URL and key; reuses one HTTP connection pool."""

    def __init__(self, *, base_url: str | None, api_key: str | None) -> None:
        import openai
        import openai.types.chat

        self._openai = openai
        self._types = openai.types.chat
        self._stream_cls = openai.AsyncStream[openai.types.chat.ChatCompletionChunk]
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "none",
            max_retries=0,
            timeout=openai.Timeout(_REQUEST_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S),
        )
        self._url = f"{str(self._client.base_url).rstrip('/')}/chat/completions"

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.close()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        """Stream one request; see ``Provider``."""
        kwargs: dict[str, Any] = {
            "model": request.model_id,
            "messages": request.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            kwargs["tools"] = request.tools
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        acc = _Accumulator()
        try:
            # The SDK's documented generic ``post`` (README, "Undocumented endpoints") sends the
            # body as given. ``chat.completions.create`` would first walk every message through
            # its TypedDict transformer, which costs milliseconds per request on a long history
            # and stalls the event loop that serves admissions.
            stream = await self._client.post(
                "/chat/completions",
                body=kwargs,
                cast_to=self._types.ChatCompletion,
                stream=True,
                stream_cls=self._stream_cls,
            )
            async with stream:
                async for chunk in stream:
                    for event in acc.feed(chunk):
                        yield event
        except self._openai.OpenAIError as exc:
            raise _translate(exc, self._url) from exc
        for call in acc.tool_calls():
            yield call
        if acc.finish is None:
            raise ProviderError(
                "the provider closed the stream without finishing", retryable=True, url=self._url
            )
        yield StreamEnd(acc.finish, acc.usage)


class _Accumulator:
    """Folds ``chat.completion.chunk`` objects: yields text and reasoning as they come, and
    assembles tool calls (streamed as id/name/argument fragments keyed by ``index``)."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, str]] = {}
        self.finish: str | None = None
        self.usage = Usage()

    def feed(self, chunk: Any) -> list[ProviderEvent]:
        out: list[ProviderEvent] = []
        if chunk.usage is not None:
            self.usage = _usage(chunk.usage)
        for choice in chunk.choices:
            if choice.finish_reason:
                self.finish = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            extra = delta.model_extra or {}
            reasoning = extra.get("reasoning_content") or extra.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out.append(ReasoningDelta(reasoning))
            if delta.content:
                out.append(TextDelta(delta.content))
            for tc in delta.tool_calls or []:
                slot = self.calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                slot["id"] = tc.id or slot["id"]
                if tc.function is not None:
                    slot["name"] += tc.function.name or ""
                    slot["args"] += tc.function.arguments or ""
        return out

    def tool_calls(self) -> list[ToolCallRequest]:
        return [
            ToolCallRequest(
                slot["id"] or f"call_{index}", slot["name"], _parse_arguments(slot["args"])
            )
            for index, slot in sorted(self.calls.items())
        ]


def _parse_arguments(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def _usage(u: Any) -> Usage:
    details = getattr(u, "completion_tokens_details", None)
    prompt_details = getattr(u, "prompt_tokens_details", None)
    return Usage(
        input_tokens=int(u.prompt_tokens or 0),
        output_tokens=int(u.completion_tokens or 0),
        reasoning_tokens=int(getattr(details, "reasoning_tokens", 0) or 0),
        cache_read_tokens=int(getattr(prompt_details, "cached_tokens", 0) or 0),
    )
