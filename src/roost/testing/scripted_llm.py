"""A scripted LLM server on loopback, speaking OpenAI Chat Completions and Anthropic Messages.

It is the suite's only test double. Tests script the model's replies as `Turn`s, queue them with
`ScriptedLLM.enqueue` and point a real ``roost serve`` subprocess (or the ``openai`` or
``anthropic`` SDK) at `ScriptedLLM.base_url`. Each ``POST /v1/chat/completions`` or
``POST /v1/messages`` records its JSON body in `ScriptedLLM.requests`, then plays the next queued
turn (FIFO), or the default turn when the queue is empty; both endpoints share the queue.

A turn is a list of steps played in order. Content steps (`Text`, `Reasoning`, `ToolCall`) are
wire-neutral: `_play` cuts them into deltas and hands those to a `_Sink`, which encodes one wire
format: OpenAI chunks streamed as SSE or one ``chat.completion`` object, Anthropic stream events
or one ``message`` object. Transport steps (`Delay`, `Fail`, `Drop`, `Hang`) act on the
`_Exchange`, the HTTP response being written, the same way for both formats.

Wire details (OpenAI API reference, "Chat Completions" and "Streaming"; Anthropic API reference,
"Messages", "Streaming Messages" and "Errors"):

- Streamed bodies use ``Transfer-Encoding: chunked``, one SSE frame per HTTP chunk and one TCP
  write per chunk (``TCP_NODELAY``). Chunked framing is what makes a `Drop` visible to clients:
  a close-delimited body would end "cleanly" at the FIN, indistinguishable from a normal end.
- Every response says ``Connection: close``: one request per connection, so a hanging handler can
  watch its socket for the client's disconnect.
- Headers go out with the first byte of the body, so a leading `Delay` or `Hang` delays them and a
  `Fail` before any content is a real HTTP error status. For the same reason an Anthropic stream
  sends ``message_start`` with its first content, not before.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import select
import socket
import socketserver
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, TypeAlias, assert_never

_log = logging.getLogger(__name__)

MODEL_ID = "scripted-model"
"""The one model ``GET /v1/models`` lists; replies echo the requested model instead."""
AUX_MODEL = "title-model"
"""A model answered automatically (with ``ScriptedLLM.aux_title``), for what a server asks a
small model: tests configure it as ``small_model``, so titles take no scripted turn."""
AUX_TITLE = "Scripted title"

_POLL_S = 0.05
"""How often sleeping and hanging handlers check for a stop or a client disconnect."""

_ARGUMENT_FRAGMENT_CHARS = 16
"""Target size of one streamed tool-call arguments fragment (there are always at least two)."""


@dataclass(frozen=True)
class Text:
    """Assistant text, streamed as ``delta.content`` pieces of ``chunk_chars`` characters."""

    text: str
    chunk_chars: int = 4


@dataclass(frozen=True)
class Reasoning:
    """Reasoning text, streamed as ``delta.reasoning_content`` (the DeepSeek/vLLM field)."""

    text: str
    chunk_chars: int = 4


@dataclass(frozen=True)
class ToolCall:
    """A function call, streamed as ``delta.tool_calls`` (Anthropic: a ``tool_use`` block).

    Several in one turn are parallel calls with ``index`` 0, 1, … in script order. The arguments'
    JSON is streamed in two or more fragments (Anthropic: ``input_json_delta`` events).
    """

    name: str
    arguments: dict[str, Any]
    """Any: tool arguments are arbitrary JSON, as on the wire."""
    call_id: str | None = None
    """None mints ``call_<n>`` (Anthropic: ``toolu_<n>``), unique for the server's lifetime."""


@dataclass(frozen=True)
class Delay:
    """Sleep at this point; before the first byte it delays the response headers."""

    seconds: float


@dataclass(frozen=True)
class Fail:
    """End the reply with an error.

    Before anything was sent: HTTP ``status`` with an OpenAI error body. Once streaming started:
    an SSE ``data: {"error": {...}}`` frame, then the body ends and the connection closes. On the
    Anthropic endpoint the body is ``{"type": "error", "error": {"type", "message"}}`` (the type
    follows ``status``, 529 is ``overloaded_error``) and mid-stream it is an ``event: error`` frame.
    """

    status: int
    message: str = "scripted failure"


@dataclass(frozen=True)
class Drop:
    """Close the TCP connection abruptly: no final chunk, no ``[DONE]``, no chunked terminator."""


@dataclass(frozen=True)
class Hang:
    """Send nothing more; keep the socket open until the client disconnects or the server stops."""


Step: TypeAlias = Text | Reasoning | ToolCall | Delay | Fail | Drop | Hang


@dataclass
class Turn:
    """One scripted model reply: its steps in order, then how it finishes."""

    items: list[Step]
    finish_reason: str | None = None
    """None means ``"tool_calls"`` if the turn has a `ToolCall`, else ``"stop"``. The Anthropic
    endpoint sends ``stop`` as ``end_turn``, ``tool_calls`` as ``tool_use``, ``length`` as
    ``max_tokens`` and any other value as given."""
    usage: tuple[int, int] | None = (10, 5)
    """``(prompt_tokens, completion_tokens)``: a final ``choices: []`` chunk when the request set
    ``stream_options.include_usage``, and always ``usage`` in non-streaming replies. Anthropic
    replies always carry usage (None sends zeros): input tokens in ``message_start``, output
    tokens in ``message_delta``."""

    def resolved_finish_reason(self) -> str:
        """The finish reason sent on the wire."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if any(isinstance(s, ToolCall) for s in self.items) else "stop"


def text_turn(text: str) -> Turn:
    """A turn that answers with ``text`` and stops."""
    return Turn([Text(text)])


def tool_turn(name: str, arguments: dict[str, Any]) -> Turn:
    """A turn that makes one tool call and finishes with ``tool_calls``."""
    return Turn([ToolCall(name, arguments)])


class ScriptedLLM:
    """The scripted server; a context manager that starts and stops it.

    Thread-safe: tests enqueue turns and read requests while handler threads serve them.
    """

    def __init__(self, default: Turn | None = None, aux_title: str = AUX_TITLE) -> None:
        self.default = default if default is not None else text_turn("ok")
        self.aux_title = aux_title
        """What requests for ``AUX_MODEL`` (titles) are answered with."""
        self._lock = threading.Condition()
        self._queue: deque[Turn] = deque()
        self._requests: list[dict[str, Any]] = []
        self._aux_requests: list[dict[str, Any]] = []
        self._call_numbers = itertools.count(1)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ScriptedLLM:
        """Bind a free loopback port and serve from a daemon thread; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("ScriptedLLM is already running")
        self._stopping.clear()
        server = _Server(self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_S},
            name=f"scripted-llm:{server.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging and sleeping handlers close their connections. Idempotent."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> ScriptedLLM:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port; `RuntimeError` before `start`."""
        if self._server is None:
            raise RuntimeError("ScriptedLLM is not running")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as ``base_url``: ``http://127.0.0.1:PORT/v1``.

        OpenCode's ``@ai-sdk/anthropic`` takes it as ``baseURL`` too; the ``anthropic`` SDK wants
        it without ``/v1``, since it posts to ``/v1/messages`` itself.
        """
        return f"http://127.0.0.1:{self.port}/v1"

    def enqueue(self, *turns: Turn) -> None:
        """Queue replies for the next requests, first in first out."""
        with self._lock:
            self._queue.extend(turns)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Copies of every chat or messages request body received, oldest first."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def wait_for_requests(self, n: int, timeout_s: float = 10) -> list[dict[str, Any]]:
        """Block until at least ``n`` chat requests arrived; returns copies of all of them.

        Raises:
            TimeoutError: Fewer than ``n`` arrived within ``timeout_s``.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= n, timeout_s):
                raise TimeoutError(
                    f"expected {n} requests within {timeout_s}s, got {len(self._requests)}"
                )
            return copy.deepcopy(self._requests)

    @property
    def aux_requests(self) -> list[dict[str, Any]]:
        """Copies of the requests for ``AUX_MODEL`` (the server's titles), oldest first."""
        with self._lock:
            return copy.deepcopy(self._aux_requests)

    def _receive(self, body: dict[str, Any]) -> Turn:
        """Record one request body and take the turn that answers it.

        A request for ``AUX_MODEL`` (the small model a server uses for titles, as the shared
        bench's mock does) is answered with ``aux_title`` and kept apart: it takes no
        scripted turn and is not in ``requests``.
        """
        with self._lock:
            if body.get("model") == AUX_MODEL:
                self._aux_requests.append(copy.deepcopy(body))
                self._lock.notify_all()
                return text_turn(self.aux_title)
            self._requests.append(copy.deepcopy(body))
            self._lock.notify_all()
            return self._queue.popleft() if self._queue else self.default

    def _new_call_id(self, prefix: str = "call_") -> str:
        with self._lock:
            return f"{prefix}{next(self._call_numbers)}"


class _Stopped(Exception):
    """The server is stopping; the handler abandons its reply."""


class _Sink(Protocol):
    """One wire format's encoder for the content of a turn."""

    def text(self, piece: str) -> None: ...

    def reasoning(self, piece: str) -> None: ...

    def tool_call_start(self, index: int, call_id: str, name: str) -> None: ...

    def tool_call_arguments(self, index: int, fragment: str) -> None: ...

    def fail(self, status: int, message: str) -> None: ...

    def finish(self, finish_reason: str, usage: tuple[int, int] | None) -> None: ...


def _play(turn: Turn, sink: _Sink, exchange: _Exchange, new_call_id: Callable[[], str]) -> None:
    """Play ``turn``'s steps into ``sink``; `Fail`, `Drop` and `Hang` end it early."""
    tool_index = 0
    for step in turn.items:
        match step:
            case Text(text, chunk_chars):
                for piece in _pieces(text, chunk_chars):
                    sink.text(piece)
            case Reasoning(text, chunk_chars):
                for piece in _pieces(text, chunk_chars):
                    sink.reasoning(piece)
            case ToolCall(name, arguments, call_id):
                sink.tool_call_start(tool_index, call_id or new_call_id(), name)
                for fragment in _fragments(json.dumps(arguments)):
                    sink.tool_call_arguments(tool_index, fragment)
                tool_index += 1
            case Delay(seconds):
                exchange.sleep(seconds)
            case Fail(status, message):
                sink.fail(status, message)
                return
            case Drop():
                exchange.drop()
                return
            case Hang():
                exchange.hang()
                return
            case _:
                assert_never(step)
    sink.finish(turn.resolved_finish_reason(), turn.usage)


def _pieces(text: str, size: int) -> Iterator[str]:
    step = max(1, size)
    for start in range(0, len(text), step):
        yield text[start : start + step]


def _fragments(arguments_json: str) -> Iterator[str]:
    """Cut a JSON text into two or more fragments, about `_ARGUMENT_FRAGMENT_CHARS` each."""
    count = max(2, math.ceil(len(arguments_json) / _ARGUMENT_FRAGMENT_CHARS))
    return _pieces(arguments_json, math.ceil(len(arguments_json) / count))


def _usage(usage: tuple[int, int]) -> dict[str, int]:
    prompt_tokens, completion_tokens = usage
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def _error_body(status: int, message: str) -> dict[str, Any]:
    """An OpenAI error object: ``{"error": {"message", "type", "param", "code"}}``."""
    fallback = "server_error" if status >= 500 else "invalid_request_error"
    return {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, fallback),
            "param": None,
            "code": "rate_limit_exceeded" if status == 429 else None,
        }
    }


def _json_bytes(value: Any) -> bytes:  # Any: any JSON value
    return json.dumps(value, separators=(",", ":")).encode()


class _Exchange:
    """The HTTP response to one request: lazy headers, chunked frames and abrupt endings."""

    def __init__(self, handler: _Handler, stopping: threading.Event) -> None:
        self._handler = handler
        self._stopping = stopping
        self.has_started = False
        """Whether the status line and headers were sent."""

    def send_json(self, status: int, body: dict[str, Any]) -> None:
        """Send a complete JSON response; only before anything else was sent."""
        assert not self.has_started
        self.has_started = True
        data = _json_bytes(body)
        self._handler.send_response(status)
        self._handler.send_header("Content-Type", "application/json")
        self._handler.send_header("Content-Length", str(len(data)))
        self._handler.send_header("Connection", "close")
        self._handler.end_headers()
        self._handler.wfile.write(data)

    def write_chunk(self, data: bytes) -> None:
        """Send one HTTP chunk of an event stream, sending the headers first if needed."""
        if not self.has_started:
            self.has_started = True
            self._handler.send_response(200)
            self._handler.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self._handler.send_header("Cache-Control", "no-cache")
            self._handler.send_header("Transfer-Encoding", "chunked")
            self._handler.send_header("Connection", "close")
            self._handler.end_headers()
        # One write per chunk: with TCP_NODELAY each frame leaves as its own segment.
        self._handler.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        """Send the chunked terminator: the body ended normally (RFC 9112, section 7.1)."""
        self._handler.wfile.write(b"0\r\n\r\n")

    def sleep(self, seconds: float) -> None:
        """Sleep, or raise `_Stopped` as soon as the server stops."""
        if self._stopping.wait(seconds):
            raise _Stopped

    def drop(self) -> None:
        """Close the socket now, mid-whatever."""
        connection = self._handler.connection
        try:
            connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            _log.debug("client already gone before drop")
        connection.close()

    def hang(self) -> None:
        """Return once the client disconnects or the server stops; send nothing meanwhile."""
        connection = self._handler.connection
        while not self._stopping.is_set():
            readable, _, _ = select.select([connection], [], [], _POLL_S)
            if not readable:
                continue
            try:
                if not connection.recv(1, socket.MSG_PEEK):
                    return  # EOF: the client closed its end
            except ConnectionError:
                return
            time.sleep(_POLL_S)  # the client sent unexpected bytes; keep ignoring them


class _OpenAIStream:
    """Encodes a turn as ``chat.completion.chunk`` objects in SSE ``data:`` frames."""

    def __init__(self, exchange: _Exchange, model: str, include_usage: bool) -> None:
        self._exchange = exchange
        self._model = model
        self._include_usage = include_usage
        self._id = f"chatcmpl-{next(_completion_numbers)}"
        self._created = int(time.time())

    def text(self, piece: str) -> None:
        self._delta({"content": piece})

    def reasoning(self, piece: str) -> None:
        self._delta({"reasoning_content": piece})

    def tool_call_start(self, index: int, call_id: str, name: str) -> None:
        call = {"index": index, "id": call_id, "type": "function"}
        self._delta({"tool_calls": [{**call, "function": {"name": name, "arguments": ""}}]})

    def tool_call_arguments(self, index: int, fragment: str) -> None:
        self._delta({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def fail(self, status: int, message: str) -> None:
        if not self._exchange.has_started:
            self._exchange.send_json(status, _error_body(status, message))
            return
        self._frame(_json_bytes(_error_body(status, message)))
        self._exchange.end_chunks()

    def finish(self, finish_reason: str, usage: tuple[int, int] | None) -> None:
        self._delta({}, finish_reason)
        if self._include_usage and usage is not None:
            self._frame(_json_bytes({**self._envelope([]), "usage": _usage(usage)}))
        self._frame(b"[DONE]")
        self._exchange.end_chunks()

    def _delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> None:
        choice = {
            "index": 0,
            "delta": {"role": "assistant", **delta},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        chunk = self._envelope([choice])
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: null on every chunk but the usage chunk
        self._frame(_json_bytes(chunk))

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }

    def _frame(self, data: bytes) -> None:
        self._exchange.write_chunk(b"data: " + data + b"\n\n")


class _OpenAICompletion:
    """Collects a turn into one non-streaming ``chat.completion`` object."""

    def __init__(self, exchange: _Exchange, model: str) -> None:
        self._exchange = exchange
        self._model = model
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tool_calls: list[dict[str, Any]] = []

    def text(self, piece: str) -> None:
        self._text.append(piece)

    def reasoning(self, piece: str) -> None:
        self._reasoning.append(piece)

    def tool_call_start(self, index: int, call_id: str, name: str) -> None:
        assert index == len(self._tool_calls)
        function = {"name": name, "arguments": ""}
        self._tool_calls.append({"id": call_id, "type": "function", "function": function})

    def tool_call_arguments(self, index: int, fragment: str) -> None:
        self._tool_calls[index]["function"]["arguments"] += fragment

    def fail(self, status: int, message: str) -> None:
        self._exchange.send_json(status, _error_body(status, message))

    def finish(self, finish_reason: str, usage: tuple[int, int] | None) -> None:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self._text) if self._text else None,
        }
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._tool_calls:
            message["tool_calls"] = self._tool_calls
        completion: dict[str, Any] = {
            "id": f"chatcmpl-{next(_completion_numbers)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self._model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if usage is not None:
            completion["usage"] = _usage(usage)
        self._exchange.send_json(200, completion)


_completion_numbers = itertools.count(1)
"""Ids of ``chat.completion`` objects and Anthropic ``message`` objects."""


_STOP_REASONS = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens"}
"""Script finish reasons (OpenAI's words) → Anthropic ``stop_reason``; others pass as given."""

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_THINKING_SIGNATURE = "scripted-signature"
"""What a thinking block carries as ``signature`` (real ones are opaque and verified upstream)."""


def _anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    """An Anthropic error object: ``{"type": "error", "error": {"type", "message"}}``."""
    fallback = "api_error" if status >= 500 else "invalid_request_error"
    error = {"type": _ANTHROPIC_ERROR_TYPES.get(status, fallback), "message": message}
    return {"type": "error", "error": error}


def _anthropic_message(model: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``message`` object without stop reason and usage (``message_start`` sends it so)."""
    return {
        "id": f"msg_scripted_{next(_completion_numbers)}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
    }


class _AnthropicStream:
    """Encodes a turn as Messages stream events in named SSE frames (``event:`` + ``data:``).

    Consecutive text (or reasoning) steps share one content block; each `ToolCall` opens its own
    ``tool_use`` block. A thinking block ends with a ``signature_delta``, as the API's do.
    """

    def __init__(self, exchange: _Exchange, model: str, usage: tuple[int, int] | None) -> None:
        self._exchange = exchange
        self._model = model
        self._input_tokens = usage[0] if usage is not None else 0
        self._has_message = False
        self._block: str | None = None
        """The open content block's type, or None."""
        self._index = -1
        """The open (or last) content block's ``index``."""

    def text(self, piece: str) -> None:
        self._open("text", {"type": "text", "text": ""})
        self._delta({"type": "text_delta", "text": piece})

    def reasoning(self, piece: str) -> None:
        self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        self._delta({"type": "thinking_delta", "thinking": piece})

    def tool_call_start(self, index: int, call_id: str, name: str) -> None:
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        self._open("tool_use", block, always=True)

    def tool_call_arguments(self, index: int, fragment: str) -> None:
        self._delta({"type": "input_json_delta", "partial_json": fragment})

    def fail(self, status: int, message: str) -> None:
        if not self._exchange.has_started:
            self._exchange.send_json(status, _anthropic_error_body(status, message))
            return
        self._event("error", _anthropic_error_body(status, message))
        self._exchange.end_chunks()

    def finish(self, finish_reason: str, usage: tuple[int, int] | None) -> None:
        self._start_message()
        self._close()
        delta = {"stop_reason": _STOP_REASONS.get(finish_reason, finish_reason)}
        self._event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {**delta, "stop_sequence": None},
                "usage": {"output_tokens": usage[1] if usage is not None else 0},
            },
        )
        self._event("message_stop", {"type": "message_stop"})
        self._exchange.end_chunks()

    def _start_message(self) -> None:
        if self._has_message:
            return
        self._has_message = True
        message = _anthropic_message(self._model, [])
        message["usage"] = {"input_tokens": self._input_tokens, "output_tokens": 0}
        self._event("message_start", {"type": "message_start", "message": message})
        self._event("ping", {"type": "ping"})  # the API sends these; clients skip them

    def _open(self, kind: str, block: dict[str, Any], *, always: bool = False) -> None:
        if self._block == kind and not always:
            return
        self._start_message()
        self._close()
        self._index += 1
        self._block = kind
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        self._event("content_block_start", start)

    def _close(self) -> None:
        if self._block is None:
            return
        if self._block == "thinking":
            self._delta({"type": "signature_delta", "signature": _THINKING_SIGNATURE})
        self._event("content_block_stop", {"type": "content_block_stop", "index": self._index})
        self._block = None

    def _delta(self, delta: dict[str, Any]) -> None:
        event = {"type": "content_block_delta", "index": self._index, "delta": delta}
        self._event("content_block_delta", event)

    def _event(self, name: str, data: dict[str, Any]) -> None:
        self._exchange.write_chunk(b"event: %b\ndata: %b\n\n" % (name.encode(), _json_bytes(data)))


class _AnthropicMessage:
    """Collects a turn into one non-streaming Messages ``message`` object."""

    def __init__(self, exchange: _Exchange, model: str) -> None:
        self._exchange = exchange
        self._model = model
        self._content: list[dict[str, Any]] = []
        self._arguments: list[tuple[dict[str, Any], list[str]]] = []
        """Per tool call: its ``tool_use`` block and the input JSON fragments received."""

    def text(self, piece: str) -> None:
        self._append("text", piece)

    def reasoning(self, piece: str) -> None:
        self._append("thinking", piece)

    def tool_call_start(self, index: int, call_id: str, name: str) -> None:
        assert index == len(self._arguments)
        block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
        self._content.append(block)
        self._arguments.append((block, []))

    def tool_call_arguments(self, index: int, fragment: str) -> None:
        self._arguments[index][1].append(fragment)

    def fail(self, status: int, message: str) -> None:
        self._exchange.send_json(status, _anthropic_error_body(status, message))

    def finish(self, finish_reason: str, usage: tuple[int, int] | None) -> None:
        for block, fragments in self._arguments:
            block["input"] = json.loads("".join(fragments))
        message = _anthropic_message(self._model, self._content)
        message["stop_reason"] = _STOP_REASONS.get(finish_reason, finish_reason)
        input_tokens, output_tokens = usage if usage is not None else (0, 0)
        message["usage"] = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        self._exchange.send_json(200, message)

    def _append(self, kind: str, piece: str) -> None:
        last = self._content[-1] if self._content else None
        if last is not None and last["type"] == kind:
            last[kind] += piece
            return
        block = {"type": kind, kind: piece}
        if kind == "thinking":
            block["signature"] = _THINKING_SIGNATURE
        self._content.append(block)


_OPENAI_ROUTES = ("/v1/chat/completions", "/chat/completions")
_ANTHROPIC_ROUTES = ("/v1/messages", "/messages")


def _sink_for(
    body: dict[str, Any], turn: Turn, exchange: _Exchange, model: str, *, is_anthropic: bool
) -> _Sink:
    """The sink that answers ``body`` in its endpoint's format, streamed or not."""
    streaming = body.get("stream") is True
    if is_anthropic:
        if streaming:
            return _AnthropicStream(exchange, model, turn.usage)
        return _AnthropicMessage(exchange, model)
    if streaming:
        stream_options = body.get("stream_options") or {}
        return _OpenAIStream(exchange, model, stream_options.get("include_usage") is True)
    return _OpenAICompletion(exchange, model)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait on handlers; hanging ones exit on their own
    request_queue_size = 64

    def __init__(self, script: ScriptedLLM) -> None:
        self.script = script
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host with socket.getfqdn(), a DNS lookup that can
        # stall on a sandbox without resolvers; loopback needs no name.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = self.socket.getsockname()[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.close_connection = True
        exchange = _Exchange(self, self.server.script._stopping)
        if self._route() in ("/v1/models", "/models"):
            models = {"object": "list", "data": [{"id": MODEL_ID, "object": "model"}]}
            exchange.send_json(200, models)
        else:
            exchange.send_json(404, _error_body(404, f"no route GET {self.path}"))

    def do_POST(self) -> None:
        self.close_connection = True
        script = self.server.script
        exchange = _Exchange(self, script._stopping)
        route = self._route()
        is_anthropic = route in _ANTHROPIC_ROUTES
        if not is_anthropic and route not in _OPENAI_ROUTES:
            exchange.send_json(404, _error_body(404, f"no route POST {self.path}"))
            return
        error_body = _anthropic_error_body if is_anthropic else _error_body
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length))
        except ValueError as exc:
            exchange.send_json(400, error_body(400, f"request body is not JSON: {exc}"))
            return
        if not isinstance(body, dict):
            exchange.send_json(400, error_body(400, "request body is not a JSON object"))
            return
        turn = script._receive(body)
        model = body.get("model")
        model = model if isinstance(model, str) else MODEL_ID
        sink = _sink_for(body, turn, exchange, model, is_anthropic=is_anthropic)
        call_id_prefix = "toolu_" if is_anthropic else "call_"
        try:
            _play(turn, sink, exchange, lambda: script._new_call_id(call_id_prefix))
        except _Stopped:
            exchange.drop()
        except ConnectionError as exc:
            _log.debug("client disconnected mid-reply: %r", exc)

    def _route(self) -> str:
        return self.path.split("?", 1)[0].rstrip("/")

    def log_message(self, format: str, *args: Any) -> None:
        # Any: the base class passes %-format arguments of any type.
        _log.debug("%s %s", self.address_string(), format % args)
