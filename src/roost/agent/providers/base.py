"""The provider protocol: one streamed model request as a sequence of ``ProviderEvent``s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Visible answer text, in the order the model produced it."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Reasoning ("thinking") text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    """A complete tool call the model asked for (arguments parsed from JSON)."""

    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the provider for one request."""

    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cache_read_tokens: int = 0


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The request finished; ``finish_reason`` as the provider said (``stop``, ``length`` …)."""

    finish_reason: str
    usage: Usage = field(default_factory=Usage)


ProviderEvent = TextDelta | ReasoningDelta | ToolCallRequest | StreamEnd


@dataclass(frozen=True)
class ModelRequest:
    """One model request.

    Attributes:
        messages: Chat messages in OpenAI's shape (``role``, ``content``, …).
        tools: Tool definitions in OpenAI's function shape; empty for none.
    """

    model_id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    temperature: float | None = None
    top_p: float | None = None


class Provider(Protocol):
    """Streams one model request.

    ``stream`` raises ``roost.errors.ProviderError`` (with ``status_code`` and ``retryable``)
    for any failure, before or during the stream.
    """

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]: ...
