"""When a conversation no longer fits its model: the usable window and provider refusals.

The arithmetic is OpenCode 1.18.34's (``session/overflow.ts``, ``ProviderTransform``):

- a model's answer may take ``min(limit.output, 32000)`` tokens, or 32000 when the output limit
  is unknown (``OUTPUT_TOKEN_MAX``);
- the usable window is ``limit.context`` minus that answer reserve, or, for a model with an
  ``input`` limit, ``limit.input`` minus ``compaction.reserved`` (default: the answer reserve,
  at most 20000 tokens);
- the window is full once the last request's tokens (``total``, else input + output + cache)
  reach the usable window. A model whose ``limit.context`` is 0 (unknown, OpenCode's default
  for models configured without a limit) never fills, and ``compaction.auto: false`` turns the
  check off.

A provider can also refuse a request as too long. ``is_context_overflow`` recognises that
refusal from the error's status and text: OpenAI's ``context_length_exceeded`` ("This model's
maximum context length is … tokens"), Anthropic's ``prompt is too long: … tokens > … maximum``
and 413 ``request_too_large``, and the wordings of common OpenAI-compatible servers (vLLM,
llama.cpp, Ollama, OpenRouter).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from roost.agent.catalog import ModelLimit
from roost.agent.providers.base import Usage
from roost.errors import ProviderError

OUTPUT_TOKEN_MAX: Final = 32_000
"""The answer reserve of a model whose output limit is unknown or larger (tokens)."""
COMPACTION_BUFFER: Final = 20_000
"""Most tokens kept free below an ``input`` limit when ``compaction.reserved`` is unset."""


@dataclass(frozen=True)
class CompactionSettings:
    """The config's ``compaction`` object (OpenAPI ``Config.compaction``).

    Attributes:
        auto: Compact when the context window is full or the provider refuses a request as
            too long (default true).
        prune: Clear old tool outputs from what the model sees (default false in 1.18.34).
        reserved: Tokens kept free below a model's ``input`` limit; None for the default.
    """

    auto: bool = True
    prune: bool = False
    reserved: int | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CompactionSettings:
        """Read ``config["compaction"]``; a missing or malformed entry means the defaults."""
        entry = config.get("compaction")
        if not isinstance(entry, dict):
            return cls()
        reserved = entry.get("reserved")
        return cls(
            auto=entry.get("auto") is not False,
            prune=entry.get("prune") is True,
            reserved=int(reserved) if isinstance(reserved, int | float) else None,
        )


@dataclass(frozen=True)
class ContextWindow:
    """One model's context window under the compaction settings (see module docstring)."""

    limit: ModelLimit
    settings: CompactionSettings

    @property
    def answer_reserve(self) -> int:
        """Tokens set aside for the model's answer."""
        return min(self.limit.output, OUTPUT_TOKEN_MAX) or OUTPUT_TOKEN_MAX

    @property
    def usable(self) -> int:
        """Prompt tokens that fit; 0 when the context limit is unknown."""
        if self.limit.context <= 0:
            return 0
        if self.limit.input > 0:
            reserved = self.settings.reserved
            if reserved is None:
                reserved = min(COMPACTION_BUFFER, self.answer_reserve)
            return max(0, self.limit.input - reserved)
        return max(0, self.limit.context - self.answer_reserve)

    def is_full(self, tokens: int) -> bool:
        """Whether a request that used ``tokens`` leaves no room for the next one."""
        if not self.settings.auto or self.limit.context <= 0:
            return False
        return tokens >= self.usable


def message_tokens(tokens: dict[str, Any]) -> int:
    """Tokens of one stored request (``AssistantMessage.tokens``): ``total``, else the sum."""
    total = tokens.get("total")
    if total:
        return int(total)
    cache = tokens.get("cache") or {}
    return int(
        (tokens.get("input") or 0)
        + (tokens.get("output") or 0)
        + (cache.get("read") or 0)
        + (cache.get("write") or 0)
    )


def usage_tokens(usage: Usage) -> int:
    """Tokens of one request as the turn saw them; the same count as ``message_tokens`` of the
    step's stored ``tokens`` (whose ``total`` is input + output)."""
    return usage.input_tokens + usage.output_tokens


_OVERFLOW_TEXT = re.compile(
    "|".join(
        (
            r"context[_ ]length[_ ]exceeded",
            r"maximum context length",
            r"context (?:length|window|size)",
            r"prompt is too long",
            r"input is too long",
            r"too many (?:input )?tokens",
            r"request[_ ]too[_ ]large",
            r"request entity too large",
            r"reduce the length of the (?:messages|prompt)",
            r"(?:input|prompt) token count .* exceeds",
            r"exceed(?:s|ed)? (?:the )?(?:model'?s? )?token limit",
        )
    ),
    re.IGNORECASE,
)
_OVERFLOW_STATUSES: Final = frozenset({400, 413, 422})
"""Statuses a too-long request is refused with; a 429 that talks of tokens is a rate limit."""


def is_context_overflow(exc: ProviderError) -> bool:
    """Whether the provider refused the request because the conversation is too long.

    A refusal is a 400, 413 or 422 answer, or an error inside a stream (no status), whose
    message or body says so (see module docstring).
    """
    if exc.status_code is not None and exc.status_code not in _OVERFLOW_STATUSES:
        return False
    text = f"{exc.message}\n{exc.response_body or ''}"
    return _OVERFLOW_TEXT.search(text) is not None
