"""The agent turn: model request → streamed answer → finish, with bounded retries.

``run_turn`` knows nothing about storage: it reports progress to a ``TurnSink`` (the engine's
turn writer) and raises ``ProviderError`` when the provider fails for good. Retry policy: a
retryable failure (429, 5xx, transport) that happens before the step produced any output is
retried up to ``max_attempts`` times with exponential backoff (tenacity), and each wait is
reported through ``TurnSink.retrying`` so clients see ``session.status`` ``retry``.
Tools arrive with issue #3; until then a turn is one step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from roost.agent.providers.base import (
    ModelRequest,
    Provider,
    ReasoningDelta,
    StreamEnd,
    TextDelta,
    ToolCallRequest,
    Usage,
)
from roost.errors import ProviderError


class TurnSink(Protocol):
    """Receives a turn's progress, in order; implemented by the engine."""

    async def step_started(self) -> None: ...
    async def text_delta(self, text: str) -> None: ...
    async def reasoning_delta(self, text: str) -> None: ...
    async def step_finished(self, finish_reason: str, usage: Usage) -> None: ...
    async def retrying(self, attempt: int, message: str, next_ms: int) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How provider failures are retried.

    Attributes:
        max_attempts: Total tries of one step, first included.
        initial_s: First backoff, doubled on each retry up to ``max_s``.
    """

    max_attempts: int = 4
    initial_s: float = 1.0
    max_s: float = 30.0


class _OutputStarted(Exception):
    """Marks a failure after output was produced: it is not retried."""

    def __init__(self, cause: ProviderError) -> None:
        super().__init__(cause.message)
        self.cause = cause


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


async def run_turn(
    provider: Provider, request: ModelRequest, sink: TurnSink, policy: RetryPolicy
) -> str:
    """Run one turn and return the model's finish reason.

    Raises:
        ProviderError: The provider failed and retries (if any applied) ran out.
    """
    await sink.step_started()

    async def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait_s = state.upcoming_sleep
        await sink.retrying(
            state.attempt_number,
            str(getattr(exc, "message", exc)),
            int((time.time() + wait_s) * 1000),
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait_exponential(multiplier=policy.initial_s, max=policy.max_s),
        retry=retry_if_exception(_retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await _stream_step(provider, request, sink)
    except _OutputStarted as exc:
        raise exc.cause from None
    raise AssertionError("unreachable: tenacity either returns or reraises")


async def _stream_step(provider: Provider, request: ModelRequest, sink: TurnSink) -> str:
    produced = False
    try:
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                produced = True
                await sink.text_delta(event.text)
            elif isinstance(event, ReasoningDelta):
                produced = True
                await sink.reasoning_delta(event.text)
            elif isinstance(event, ToolCallRequest):
                produced = True  # TODO(#3): run tools; until then the call is not answered
            elif isinstance(event, StreamEnd):
                await sink.step_finished(event.finish_reason, event.usage)
                return event.finish_reason
    except ProviderError as exc:
        if produced:
            raise _OutputStarted(exc) from exc
        raise
    raise ProviderError("the provider stream ended without a finish", retryable=True)
