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

import orjson

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

        self._openai = openai
        # Chunks are read as the provider's JSON (``object``: the SDK hands them over as parsed,
        # without building a ChatCompletionChunk model for each, a tenth of the event loop's
        # time under 16 concurrent turns).
        self._stream_cls = openai.AsyncStream[object]
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
            # and stalls the event loop that serves admissions; the body goes as orjson's bytes
            # (``content``) rather than through the SDK's stdlib ``json`` encoder.
            stream = await self._client.post(
                "/chat/completions",
                content=orjson.dumps(kwargs),
                cast_to=object,
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
        """Fold one chunk (the provider's JSON object); malformed members are skipped.

        Raises:
            ProviderError: The chunk is not a JSON object.
        """
        if not isinstance(chunk, dict):
            raise ProviderError(f"the provider sent a chunk that is not an object: {chunk!r:.200}")
        out: list[ProviderEvent] = []
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.usage = _usage(usage)
        for choice in _objects(chunk.get("choices")):
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out.append(ReasoningDelta(reasoning))
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.append(TextDelta(content))
            for tc in _objects(delta.get("tool_calls")):
                index = tc.get("index")
                slot = self.calls.setdefault(
                    index if isinstance(index, int) else len(self.calls),
                    {"id": "", "name": "", "args": ""},
                )
                slot["id"] = _text(tc.get("id")) or slot["id"]
                function = tc.get("function")
                if isinstance(function, dict):
                    slot["name"] += _text(function.get("name"))
                    slot["args"] += _text(function.get("arguments"))
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


def _objects(value: Any) -> list[dict[str, Any]]:
    """The JSON objects in a chunk's list member (none if it is not a list)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(u: dict[str, Any]) -> Usage:
    """``Usage`` from a chunk's ``usage`` object (OpenAI's ``CompletionUsage``)."""
    details = u.get("completion_tokens_details")
    prompt_details = u.get("prompt_tokens_details")
    return Usage(
        input_tokens=_count(u.get("prompt_tokens")),
        output_tokens=_count(u.get("completion_tokens")),
        reasoning_tokens=_count(details.get("reasoning_tokens"))
        if isinstance(details, dict)
        else 0,
        cache_read_tokens=(
            _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
        ),
    )
