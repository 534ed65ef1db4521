"""Tools that live on MCP servers: one ``McpTool`` per tool a connected server lists.

The model sees each under OpenCode's name ``<server>_<tool>``, both parts sanitized (every
character outside ``[a-zA-Z0-9_-]`` becomes ``_``), with the server's description and JSON input
schema (``type: object``, as OpenCode forces it). A call:

1. asks permission under the tool's full name, patterns ``["*"]`` (so ``"echo_*": "ask"`` and
   other wildcard rules apply, as in OpenCode);
2. goes to the server through ``McpCaller`` (the engine's connection manager), bounded by the
   server's timeout; abort (cancellation) ends it at once;
3. returns the text content joined by blank lines, truncated and saved like bash output
   (``metadata.truncated`` / ``metadata.outputPath``), with images and blob resources as
   attachments. An ``isError`` result becomes a ``ToolError`` made from its text.

Every failure, whether the server is not connected, crashes, times out or answers with a
protocol error, is a ``ToolError`` whose message names the server and the cause.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ConfigDict

from roost.agent.tools.base import Params, Tool, ToolContext, ToolError, ToolResult, truncate_output

DEFAULT_CALL_TIMEOUT_MS = 60_000
"""A call's bound when neither the entry's ``timeout`` nor ``experimental.mcp_timeout`` is set."""

_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def sanitize(name: str) -> str:
    """OpenCode's sanitizer for MCP server and tool names."""
    return _UNSAFE.sub("_", name)


def tool_name(server: str, tool: str) -> str:
    """The name the model sees: ``text.upper-v1`` on ``echo`` is ``echo_text_upper-v1``."""
    return f"{sanitize(server)}_{sanitize(tool)}"


@dataclass(frozen=True)
class McpOutcome:
    """A server's answer to a call: its text, attachments, and whether it is an error."""

    text: str
    attachments: list[dict[str, Any]] = field(default_factory=list)
    is_error: bool = False


class McpCaller(Protocol):
    """Reaches a server by name; implemented by the engine (``engine/mcp.py``)."""

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any]) -> McpOutcome:
        """Call ``tool`` on ``server``.

        Raises:
            ToolError: The server is not connected, or the call failed in the protocol or the
                transport; the message names the server and the cause.
        """
        ...


class _Arguments(Params):
    """Whatever the model sent; the server validates it against its own schema."""

    model_config = ConfigDict(extra="allow")


class McpTool(Tool):
    """One tool of one MCP server (see the module docstring)."""

    Params = _Arguments

    def __init__(
        self,
        *,
        server: str,
        tool: str,
        description: str,
        input_schema: dict[str, Any],
        timeout_ms: int,
        caller: McpCaller,
    ) -> None:
        self.name = tool_name(server, tool)
        self.description = description
        self.server = server
        self.tool = tool
        self.timeout_ms = timeout_ms
        self._schema = {
            **input_schema,
            "type": "object",
            "properties": input_schema.get("properties") or {},
        }
        self._caller = caller

    def parameters(self) -> dict[str, Any]:
        """The server's JSON schema for the tool's input."""
        return self._schema

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """Ask permission, call the server, and map its answer (see the module docstring).

        Raises:
            PermissionRejected: A rule or the user refused the call.
            ToolError: The call failed, timed out, or the server answered ``isError``.
        """
        await ctx.ask_permission(self.name, ["*"], always=["*"], metadata={})
        arguments = dict(params.model_extra or {})
        try:
            async with asyncio.timeout(self.timeout_ms / 1000):
                outcome = await self._caller.call_tool(self.server, self.tool, arguments)
        except TimeoutError:
            raise ToolError(
                f"MCP server {self.server!r}: tool {self.tool!r} timed out after "
                f"{self.timeout_ms} ms"
            ) from None
        if outcome.is_error:
            raise ToolError(
                outcome.text or f"MCP server {self.server!r}: tool {self.tool!r} failed"
            )
        output, truncated = await asyncio.to_thread(
            truncate_output, outcome.text, save_to=ctx.output_path
        )
        metadata: dict[str, Any] = {"truncated": truncated}
        if truncated:
            metadata["outputPath"] = str(ctx.output_path)
        return ToolResult(
            output=output, title="", metadata=metadata, attachments=outcome.attachments
        )
