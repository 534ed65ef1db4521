"""How a turn ends: the outcome a stop reason or an exception maps to, and awaiting a commit
through a cancellation.

An ``Outcome`` is what ``TurnWriter.finish`` stores: the assistant message's ``error`` (one of
OpenCode's ``MessageV2`` error shapes, or None), the run's final status, and the ``error`` text
that tool calls still open get (``model.part.close_open_tool``). ``RunManager`` picks one with
``stopped_outcome`` (the turn was cancelled) or ``failed_outcome`` (it raised).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from roost.engine.recovery import SERVER_STOPPED, STORAGE_ERROR, interrupted
from roost.engine.turn import TurnWriter
from roost.errors import ContextOverflow, ProviderError, RoostError, StorageUnavailable
from roost.model import message as msg
from roost.store import runs

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How a turn ends: the assistant message's ``error`` and the run's final status."""

    error: dict[str, Any] | None
    run_status: str
    tool_error: str = "aborted"
    """The ``error`` of tool calls still pending or running."""
    retry: bool = True
    """Whether a commit the store refuses is tried again (not on shutdown)."""


def storage_outcome(exc: StorageUnavailable) -> Outcome:
    """A turn ended because the store refused its writes: failed, "interrupted: storage
    error: <what> (<code>)"."""
    text = f"{interrupted(STORAGE_ERROR)}: {exc.description} ({exc.code})"
    return Outcome(msg.unknown_error(text), runs.FAILED, tool_error=text)


async def see_through(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` to its end even if the caller is cancelled meanwhile, then re-raise
    the cancellation: a commit already under way is never left without an owner."""
    task = asyncio.ensure_future(coro)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not task.cancelled() and task.exception() is not None:
            log.warning("a commit failed during cancellation: %r", task.exception())
        raise asyncio.CancelledError
    return task.result()


def stopped_outcome(reason: str | None, writer: TurnWriter) -> Outcome:
    """The outcome of a turn cancelled for ``reason`` (see ``_Active.stop_reason``; None
    for a cancellation nobody explained, taken as an abort)."""
    if reason == "shutdown":
        text = interrupted(SERVER_STOPPED)
        return Outcome(msg.unknown_error(text), runs.INTERRUPTED, tool_error=text, retry=False)
    if reason == "storage" and writer.storage_error is not None:
        return storage_outcome(writer.storage_error)
    if reason == "write_failed":
        text = f"internal error: {writer.failure!r}"
        return Outcome(msg.unknown_error(text), runs.FAILED, tool_error=text)
    return Outcome(msg.aborted_error(), runs.ABORTED)


def failed_outcome(run: runs.RunRow, writer: TurnWriter, exc: Exception) -> Outcome:
    """The outcome of a turn that raised ``exc``."""
    storage = writer.storage_error or (exc if isinstance(exc, StorageUnavailable) else None)
    if storage is not None:
        return storage_outcome(storage)
    if isinstance(exc, ContextOverflow):
        error = msg.context_overflow_error(exc.message, exc.response_body)
        return Outcome(error, runs.FAILED)
    if isinstance(exc, ProviderError):
        error = msg.api_error(
            exc.message,
            status_code=exc.status_code,
            retryable=exc.retryable,
            response_body=exc.response_body,
            response_headers=exc.response_headers,
            url=exc.url,
        )
        return Outcome(error, runs.FAILED)
    if isinstance(exc, RoostError):
        return Outcome(msg.unknown_error(exc.message), runs.FAILED, tool_error=exc.message)
    log.exception("turn %s failed", run.id, exc_info=exc)
    return Outcome(msg.unknown_error(f"internal error: {exc!r}"), runs.FAILED)
