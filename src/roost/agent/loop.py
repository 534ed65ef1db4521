"""The agent turn: model request → streamed answer → tool calls → tool results → … → finish.

``run_turn`` knows nothing about storage: it reports progress to a ``TurnSink`` (the engine's
turn writer) and raises ``ProviderError`` when the provider fails for good.

- **Steps.** Each model request is one step. When the model asks for tools, the calls run, their
  results are appended to the conversation and the next step starts, up to ``max_steps``; the
  last allowed step is sent without tools and with a note asking for a final answer.
- **Tools.** Calls of one step run concurrently when every called tool is read-only, otherwise
  one after the other, in the model's order. A failing call (``ToolError``, bad arguments, an
  unknown tool) becomes an ``error`` part and the model is told the error; it does not end the
  turn, except when the user said no (``ToolError.ends_turn``: a rejected permission, a
  dismissed question): then the step's other calls still finish and the turn ends without
  another model request, unless ``TurnOptions.continue_on_deny``. Cancellation (abort)
  propagates.
- **Retries.** A retryable failure (429, 5xx, transport) before the step produced output is
  retried up to ``RetryPolicy.max_attempts`` times with exponential backoff (tenacity); each
  wait is reported through ``TurnSink.retrying`` so clients see ``session.status`` ``retry``.
- **Context window.** With a ``Compactor``, a step whose request filled the model's context
  window (``Compactor.is_full``) is followed by a compaction before the next request, and a
  request the provider refuses as too long (``is_context_overflow``) is compacted and sent
  again, once: a second refusal ends the turn with ``ContextOverflow``. Each compaction
  replaces the messages the next request sends.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from roost.agent.context_window import is_context_overflow
from roost.agent.providers.base import (
    ModelRequest,
    Provider,
    ReasoningDelta,
    StreamEnd,
    TextDelta,
    ToolCallRequest,
    Usage,
)
from roost.agent.tools.base import Tool, ToolContext, ToolError, ToolResult, truncate_output
from roost.errors import ContextOverflow, ProviderError

log = logging.getLogger(__name__)

MAX_STEPS_NOTE = (
    "You have reached the maximum number of steps for this turn. Tools are no longer "
    "available: answer now with what you have, and say what is left to do."
)


class TurnSink(Protocol):
    """Receives a turn's progress, in order; implemented by the engine."""

    async def step_started(self) -> None: ...
    async def text_delta(self, text: str) -> None: ...
    async def reasoning_delta(self, text: str) -> None: ...
    async def step_finished(self, finish_reason: str, usage: Usage) -> None: ...
    async def retrying(self, attempt: int, message: str, next_ms: int) -> None: ...
    async def tool_pending(self, call: ToolCallRequest) -> None: ...
    async def tool_running(self, call: ToolCallRequest) -> None: ...
    async def tool_completed(self, call: ToolCallRequest, result: ToolResult) -> None: ...
    async def tool_failed(self, call: ToolCallRequest, error: str) -> None: ...
    def tool_context(self, call: ToolCallRequest) -> ToolContext: ...


class Compactor(Protocol):
    """Keeps a turn's requests within the model's context window; implemented by the engine."""

    def is_full(self, usage: Usage) -> bool:
        """Whether the request that reported ``usage`` left no room for another one."""
        ...

    async def compact(self, refused: ProviderError | None) -> list[dict[str, Any]]:
        """Summarize the conversation (recording it through the turn's sink) and return the
        chat messages the next request sends instead of the turn's own.

        Args:
            refused: The provider's refusal of the last request as too long, if that is why.

        Raises:
            ContextOverflow: Compacting cannot help (it was just done, it is turned off, or
                the conversation is too large even to summarize).
        """
        ...


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


@dataclass
class TurnOptions:
    """What shapes a turn beyond the request.

    Attributes:
        tools: Tools the model may call, by name (already filtered for the agent).
        max_steps: Most model requests in one turn.
        more_tools: Tools that come and go while the turn runs (those of MCP servers that
            connect or close); read before every model request and added to ``tools``.
    """

    tools: dict[str, Tool] = field(default_factory=dict)
    max_steps: int = 50
    more_tools: Callable[[], dict[str, Tool]] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    continue_on_deny: bool = False
    """Call the model again after the user refused (``experimental.continue_loop_on_deny``)."""
    compactor: Compactor | None = None
    """Compacts the conversation when the context window fills; None never compacts."""


@dataclass
class _Step:
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    buffer: io.StringIO = field(default_factory=io.StringIO)
    """The step's text: a buffer, as ``+=`` on an attribute copies the whole string each time
    (quadratic in the reply's size)."""
    calls: list[ToolCallRequest] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The step's whole text."""
        return self.buffer.getvalue()


class _OutputStarted(Exception):
    """Marks a failure after output was produced: it is not retried."""

    def __init__(self, cause: ProviderError) -> None:
        super().__init__(cause.message)
        self.cause = cause


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


def tool_definitions(tools: dict[str, Tool]) -> list[dict[str, Any]]:
    """OpenAI ``tools`` entries (``type: function``) for the given tools."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters(),
            },
        }
        for t in tools.values()
    ]


async def run_turn(
    provider: Provider, request: ModelRequest, sink: TurnSink, options: TurnOptions
) -> str:
    """Run one turn and return the last step's finish reason.

    Raises:
        ProviderError: The provider failed and retries (if any applied) ran out.
        ContextOverflow: The conversation does not fit the model even after compaction.
    """
    messages = list(request.messages)
    compactor = options.compactor
    for step_no in range(max(1, options.max_steps)):
        tools = options.tools
        if options.more_tools is not None:
            tools = {**options.more_tools(), **tools}
        turn = ModelRequest(
            model_id=request.model_id,
            messages=[],
            tools=tool_definitions(tools),
            temperature=request.temperature,
            top_p=request.top_p,
        )
        last = step_no == options.max_steps - 1
        step, messages = await _request_step(provider, turn, messages, last, sink, options)
        results = await _run_calls(step.calls, sink, tools) if step.calls else []
        await sink.step_finished(step.finish_reason, step.usage)
        if not step.calls:
            return step.finish_reason
        if any(r.refused for r in results) and not options.continue_on_deny:
            return step.finish_reason
        messages.append(_assistant_message(step))
        messages.extend(
            {"role": "tool", "tool_call_id": call.call_id, "content": result.output}
            for call, result in zip(step.calls, results, strict=True)
        )
        if compactor is not None and not last and compactor.is_full(step.usage):
            messages = await compactor.compact(None)
    return "tool-calls"


async def _request_step(
    provider: Provider,
    turn: ModelRequest,
    messages: list[dict[str, Any]],
    last: bool,
    sink: TurnSink,
    options: TurnOptions,
) -> tuple[_Step, list[dict[str, Any]]]:
    """Open a step and stream its request; a refusal as too long is compacted and sent again.

    Returns:
        The step, and the turn's messages from now on (new ones when it compacted).
    """
    await sink.step_started()
    try:
        step = await _stream_with_retry(
            provider, _step_request(turn, messages, last), sink, options.retry
        )
        return step, messages
    except ProviderError as exc:
        if options.compactor is None or not is_context_overflow(exc):
            raise
        messages = await options.compactor.compact(exc)
    await sink.step_started()
    try:
        step = await _stream_with_retry(
            provider, _step_request(turn, messages, last), sink, options.retry
        )
        return step, messages
    except ProviderError as again:
        if not is_context_overflow(again):
            raise
        raise ContextOverflow(
            f"the request is still too long for the model after compaction: {again.message}",
            response_body=again.response_body,
        ) from again


def _step_request(turn: ModelRequest, messages: list[dict[str, Any]], last: bool) -> ModelRequest:
    """One step's request: ``turn`` carries the tools; the last allowed step goes without them
    and with a note asking for a final answer."""
    note = [{"role": "system", "content": MAX_STEPS_NOTE}] if last and turn.tools else []
    return ModelRequest(
        model_id=turn.model_id,
        messages=messages + note,
        tools=[] if last else turn.tools,
        temperature=turn.temperature,
        top_p=turn.top_p,
    )


async def _stream_with_retry(
    provider: Provider, request: ModelRequest, sink: TurnSink, policy: RetryPolicy
) -> _Step:
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


async def _stream_step(provider: Provider, request: ModelRequest, sink: TurnSink) -> _Step:
    step = _Step()
    produced = False
    try:
        async for event in provider.stream(request):
            if isinstance(event, TextDelta):
                produced = True
                step.buffer.write(event.text)
                await sink.text_delta(event.text)
            elif isinstance(event, ReasoningDelta):
                produced = True
                await sink.reasoning_delta(event.text)
            elif isinstance(event, ToolCallRequest):
                produced = True
                step.calls.append(event)
                await sink.tool_pending(event)
            elif isinstance(event, StreamEnd):
                step.finish_reason = event.finish_reason
                step.usage = event.usage
                return step
    except ProviderError as exc:
        if produced:
            raise _OutputStarted(exc) from exc
        raise
    raise ProviderError("the provider stream ended without a finish", retryable=True)


def _assistant_message(step: _Step) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": step.text or None,
        "tool_calls": [
            {
                "id": c.call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in step.calls
        ],
    }


@dataclass(frozen=True)
class _CallOutcome:
    output: str
    """What the model sees."""
    refused: bool = False
    """The user said no (``ToolError.ends_turn``)."""


async def _run_calls(
    calls: list[ToolCallRequest], sink: TurnSink, tools: dict[str, Tool]
) -> list[_CallOutcome]:
    """Run a step's calls; returns the outcome of each, in call order."""
    if all(c.name in tools and tools[c.name].read_only for c in calls) and len(calls) > 1:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_run_call(c, sink, tools)) for c in calls]
        return [t.result() for t in tasks]
    return [await _run_call(c, sink, tools) for c in calls]


async def _run_call(call: ToolCallRequest, sink: TurnSink, tools: dict[str, Tool]) -> _CallOutcome:
    tool = tools.get(call.name)
    if tool is None:
        error = f"Unknown tool {call.name!r}. Available tools: {', '.join(sorted(tools))}"
        await sink.tool_failed(call, error)
        return _CallOutcome(f"Error: {error}")
    ctx = sink.tool_context(call)
    await sink.tool_running(call)
    try:
        params = tool.parse(call.arguments)
        result = await tool.run(params, ctx)
    except ToolError as exc:
        await sink.tool_failed(call, exc.message)
        return _CallOutcome(f"Error: {exc.message}", refused=exc.ends_turn)
    except Exception as exc:
        log.exception("tool %s failed", call.name)
        await sink.tool_failed(call, f"{type(exc).__name__}: {exc}")
        return _CallOutcome(f"Error: {type(exc).__name__}: {exc}")
    output = result.output
    if not result.metadata.get("truncated"):  # a tool that truncated itself saved it all
        output, cut = truncate_output(output, save_to=ctx.output_path)
        if cut:
            result = ToolResult(
                output, result.title, {**result.metadata, "truncated": True}, result.attachments
            )
    await sink.tool_completed(call, result)
    return _CallOutcome(output)
