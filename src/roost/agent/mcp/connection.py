"""One live connection to an MCP server, through the official ``mcp`` SDK (2.x).

``open_local`` starts a local server (stdio transport) and ``open_remote`` reaches a remote one
(streamable HTTP, then SSE when that fails, as OpenCode does); each is an async context manager
that yields a ready ``McpConnection`` (handshake done, tools listed) and closes it on exit. SDK
objects stay in this package: callers see ``ListedTool``, ``McpOutcome`` and the errors of
``errors.py``. Importing the SDK costs about a second of CPU, so callers import this module
lazily, off the event loop.

- **Setup is bounded**: connecting and listing tools together get ``timeout_s``; past it,
  ``McpConnectError``. The SDK's anyio cancel scopes are used for this (not ``asyncio.timeout``)
  so its shielded clean-up of the transport still runs.
- **Closure is observed**: the transport's read stream is wrapped, and ``McpConnection.closed``
  is set when it ends (a local server exited, a transport gave up). The SDK then fails every
  in-flight request with "Connection closed".
- **A call never outlives its caller**: ``McpConnection.call`` runs the SDK request in the
  connection's own task group and waits for it; when the caller is cancelled (abort, timeout)
  it returns at once and the request is cancelled in the background, whatever the server does
  (a hung HTTP server cannot hold up an abort). The connection awaits those tasks on exit.
- **Local servers** run in a process group of their own (the SDK starts them with
  ``start_new_session``), with the server's environment plus the entry's ``environment`` and
  ``extra_env`` (the owner tag). They are started through ``/bin/bash``, which closes every
  descriptor above stderr before ``exec``-ing the command, for the reason ``bash.py``'s gate
  gives: the event loop's spawn may not honour ``close_fds``. ``on_spawn`` receives the group id
  before the handshake, so the caller can record it durably.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO, cast

import anyio
import anyio.abc
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from roost import __version__
from roost.agent.mcp.errors import McpCallError, McpConnectError
from roost.agent.tools.mcp import McpOutcome

CLIENT_INFO = types.Implementation(name="roost", version=__version__)
_NONCE_ENV = "ROOST_MCP_SPAWN"
"""Set to a fresh value in a local server's environment, to find its pid among our children."""
_CLOSE_FDS_AND_EXEC = (
    'for f in /proc/$$/fd/*; do f=${f##*/}; [ "$f" -gt 2 ] && exec {f}>&-; done; exec "$@"'
)
_CONNECTION_CLOSED = types.CONNECTION_CLOSED


@dataclass(frozen=True)
class ListedTool:
    """A tool as the server lists it: its own name, description and JSON input schema."""

    name: str
    description: str
    input_schema: dict[str, Any]


class McpConnection:
    """A connected server (see the module docstring).

    Attributes:
        tools: What ``tools/list`` returned when the connection was made.
        transport: ``stdio``, ``streamable-http`` or ``sse``.
        closed: Set when the transport's read stream has ended.
    """

    def __init__(
        self,
        client: Client,
        calls: anyio.abc.TaskGroup,
        tools: list[ListedTool],
        transport: str,
        closed: asyncio.Event,
    ) -> None:
        self._client = client
        self._calls = calls
        self.tools = tools
        self.transport = transport
        self.closed = closed

    async def call(self, tool: str, arguments: dict[str, Any]) -> McpOutcome:
        """Call ``tool``; returns the server's answer (``isError`` results included), mapped
        by ``call_output``.

        Raises:
            McpCallError: The request failed (a JSON-RPC error, a closed connection, a
                transport failure).
        """
        done: asyncio.Future[McpOutcome] = asyncio.get_running_loop().create_future()
        scope = anyio.CancelScope()

        async def request() -> None:
            try:
                with scope:
                    result = await self._client.call_tool(tool, arguments)
                    if not done.done():
                        text, attachments = call_output(result)
                        done.set_result(McpOutcome(text, attachments, bool(result.is_error)))
            except Exception as exc:
                if not done.done():
                    done.set_exception(_call_error(exc))
            finally:
                if not done.done():  # cancelled: the connection is closing, or the caller left
                    done.set_exception(McpCallError("Connection closed", connection_lost=True))

        if self.closed.is_set():
            raise McpCallError("Connection closed", connection_lost=True)
        self._calls.start_soon(request)
        try:
            return await done
        except asyncio.CancelledError:
            scope.cancel()  # the request task ends on its own; the task group awaits it
            done.cancel()
            raise


def _call_error(exc: Exception) -> McpCallError:
    if isinstance(exc, MCPError):
        lost = exc.code == _CONNECTION_CLOSED
        text = exc.message if lost else f"MCP error {exc.code}: {exc.message}"
        return McpCallError(text, connection_lost=lost)
    return McpCallError(describe(exc), connection_lost=True)


def describe(exc: BaseException) -> str:
    """A one-line cause for a failure, unwrapping anyio's exception groups."""
    leaves = _leaves(exc)
    first = leaves[0] if leaves else exc
    if isinstance(first, MCPError):
        return first.message
    text = str(first) or type(first).__name__
    if isinstance(first, httpx2.HTTPStatusError):
        text = f"HTTP {first.response.status_code} from {first.request.url}"
    return text


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _unauthorized(exc: BaseException) -> bool:
    return any(
        isinstance(leaf, httpx2.HTTPStatusError) and leaf.response.status_code == 401
        for leaf in _leaves(exc)
    )


class _WatchedRead:
    """The transport's read stream, setting ``closed`` when it ends (``ReadStream`` protocol)."""

    def __init__(self, inner: Any, closed: asyncio.Event) -> None:
        self._inner = inner
        self._closed = closed

    @property
    def last_context(self) -> Any:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Any:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._closed.set()
            raise

    async def aclose(self) -> None:
        self._closed.set()
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()


Streams = tuple[Any, Any]
"""The SDK's ``TransportStreams`` (read, write)."""


@asynccontextmanager
async def _watched(
    transport: Any, closed: asyncio.Event, after_enter: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[Streams]:
    async with transport as (read, write):
        if after_enter is not None:
            await after_enter()
        yield _WatchedRead(read, closed), write


async def _list_tools(client: Client) -> list[ListedTool]:
    tools: list[ListedTool] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools += [
            ListedTool(t.name, t.description or "", dict(t.input_schema or {})) for t in page.tools
        ]
        cursor = page.next_cursor
        if cursor is None:
            return tools


@asynccontextmanager
async def _connect(
    transport: Any, kind: str, timeout_s: float, closed: asyncio.Event
) -> AsyncIterator[McpConnection]:
    """Handshake and list tools within ``timeout_s``, then yield the connection."""
    ready = False
    try:
        with anyio.CancelScope(deadline=anyio.current_time() + timeout_s) as setup:
            async with Client(transport, client_info=CLIENT_INFO, cache=None) as client:
                tools = await _list_tools(client)
                setup.deadline = math.inf
                async with anyio.create_task_group() as calls:
                    ready = True
                    try:
                        yield McpConnection(client, calls, tools, kind, closed)
                    finally:
                        calls.cancel_scope.cancel()
                return
    except Exception as exc:
        if ready:
            raise
        raise McpConnectError(describe(exc), needs_auth=_unauthorized(exc)) from exc
    raise McpConnectError(f"timed out after {round(timeout_s * 1000)} ms connecting")


@asynccontextmanager
async def open_local(
    command: list[str],
    *,
    cwd: Path,
    environment: dict[str, str],
    extra_env: dict[str, str],
    timeout_s: float,
    on_spawn: Callable[[int], Awaitable[None]],
) -> AsyncIterator[McpConnection]:
    """Start ``command`` and connect to it over stdio (see the module docstring).

    Args:
        environment: The entry's ``environment``, over the server process's own.
        extra_env: Set last (the owner tag).
        on_spawn: Called with the process group id once the process runs, before the
            handshake; when it raises, the process is stopped and the error propagates.

    Raises:
        McpConnectError: The command could not start, or the handshake or the tool listing
            failed or took longer than ``timeout_s``.
    """
    env = {**os.environ, **environment}
    found = await asyncio.to_thread(shutil.which, command[0], path=env.get("PATH"))
    if found is None and not (cwd / command[0]).is_file():
        # Started through bash, a missing command would only show as a closed connection.
        raise McpConnectError(f"command not found: {command[0]}")
    nonce = uuid.uuid4().hex
    params = StdioServerParameters(
        command="/bin/bash",
        args=["-c", _CLOSE_FDS_AND_EXEC, "roost-mcp", *command],
        env={**env, **extra_env, _NONCE_ENV: nonce},
        cwd=cwd,
    )

    async def spawned() -> None:
        pid = await asyncio.to_thread(_child_with_nonce, nonce)
        if pid is not None:
            await on_spawn(pid)

    closed = asyncio.Event()
    # stderr is dropped, as OpenCode does ("ignore"); the SDK hands it to the spawn as is.
    devnull = cast(TextIO, subprocess.DEVNULL)  # Popen-style int, accepted by anyio.open_process
    transport = _watched(stdio_client(params, errlog=devnull), closed, spawned)
    async with _connect(transport, "stdio", timeout_s, closed) as connection:
        yield connection


@asynccontextmanager
async def open_remote(
    url: str, *, headers: dict[str, str], timeout_s: float
) -> AsyncIterator[McpConnection]:
    """Connect to ``url``: streamable HTTP first, then SSE, as OpenCode does.

    Raises:
        McpConnectError: Both transports failed (the message names both causes), or the
            server answered 401 (``needs_auth``; SSE is not tried then).
    """
    errors: list[str] = []
    for kind in ("streamable-http", "sse"):
        closed = asyncio.Event()
        if kind == "streamable-http":
            http = create_mcp_http_client(headers=headers)
            transport = _watched(
                _owning(http, streamable_http_client(url, http_client=http)), closed
            )
        else:
            transport = _watched(sse_client(url, headers=headers, timeout=timeout_s), closed)
        try:
            async with _connect(transport, kind, timeout_s, closed) as connection:
                yield connection
                return
        except McpConnectError as exc:
            if exc.needs_auth:
                raise
            errors.append(f"{kind}: {exc.message}")
    raise McpConnectError("; ".join(errors))


@asynccontextmanager
async def _owning(http: httpx2.AsyncClient, transport: Any) -> AsyncIterator[Streams]:
    """``transport`` with the HTTP client it was given, closed after it."""
    async with http, transport as streams:
        yield streams


def _child_with_nonce(nonce: str) -> int | None:
    """The pid of this process's child whose environment carries ``nonce`` (Linux ``/proc``)."""
    tag = f"{_NONCE_ENV}={nonce}".encode()
    children: set[int] = set()
    for task in Path("/proc/self/task").glob("*/children"):
        try:
            children.update(int(p) for p in task.read_text().split())
        except OSError:
            continue
    for pid in children:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if tag in environ.split(b"\0"):
            return pid
    return None


def call_output(result: types.CallToolResult) -> tuple[str, list[dict[str, Any]]]:
    """What OpenCode stores for a result: the text of its text and text-resource content,
    joined by blank lines, and a ``FilePart``-shaped attachment (without ids) per image and
    blob resource, as a ``data:`` URL."""
    texts: list[str] = []
    attachments: list[dict[str, Any]] = []
    for item in result.content:
        if isinstance(item, types.TextContent):
            texts.append(item.text)
        elif isinstance(item, types.ImageContent):
            attachments.append(
                {
                    "type": "file",
                    "mime": item.mime_type,
                    "url": f"data:{item.mime_type};base64,{item.data}",
                }
            )
        elif isinstance(item, types.EmbeddedResource):
            resource = item.resource
            if isinstance(resource, types.TextResourceContents) and resource.text:
                texts.append(resource.text)
            elif isinstance(resource, types.BlobResourceContents) and resource.blob:
                mime = resource.mime_type or "application/octet-stream"
                attachments.append(
                    {
                        "type": "file",
                        "mime": mime,
                        "url": f"data:{mime};base64,{resource.blob}",
                        "filename": str(resource.uri),
                    }
                )
    return "\n\n".join(texts), attachments


__all__ = [
    "ListedTool",
    "McpCallError",
    "McpConnectError",
    "McpConnection",
    "call_output",
    "describe",
    "open_local",
    "open_remote",
]
