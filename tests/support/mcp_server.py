"""A real MCP server for tests, written with the SDK's server API (``MCPServer``).

``python tests/support/mcp_server.py stdio`` serves over stdin/stdout;
``python tests/support/mcp_server.py http PORT`` serves streamable HTTP on
``http://127.0.0.1:PORT/mcp``; ``sse PORT`` serves the older SSE transport on ``/sse``.

Tools: ``text.upper-v1`` (a name OpenCode sanitizes), ``fail`` (an ``isError`` result),
``protocol_error`` (a JSON-RPC error),
``hang`` (sleeps), ``pid`` (the server's pid, so a test can SIGKILL it), ``picture`` (text and an
image), ``resource`` (an embedded text resource and a blob), ``big`` (long output) and ``env``
(an environment variable, to check what a local server is started with). When
``MCP_TEST_PID_FILE`` is set, the server appends its pid to that file on start; when
``MCP_TEST_REFUSE_FILE`` names a file that exists, it exits at once (a server that will not come
back).
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys

import mcp_types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError

PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
    )
).decode()

app = MCPServer("roost-test")


@app.tool(name="text.upper-v1", description="Upper-case the text.")
def upper(text: str) -> str:
    return text.upper()


@app.tool(description="Always fails with the given message.")
def fail(message: str) -> str:
    raise ToolError(message)


@app.tool(description="Answers with a JSON-RPC error instead of a result.")
def protocol_error() -> str:
    raise MCPError(code=-32001, message="backend exploded")


@app.tool(description="Sleep, then answer.")
async def hang(seconds: float = 3600) -> str:
    await asyncio.sleep(seconds)
    return "woke up"


@app.tool(description="The server's process id.")
def pid() -> str:
    return str(os.getpid())


@app.tool(description="A caption and a one-pixel image.")
def picture() -> types.CallToolResult:
    return types.CallToolResult(
        content=[
            types.TextContent(type="text", text="a pixel"),
            types.ImageContent(type="image", data=PIXEL_PNG, mime_type="image/png"),
        ]
    )


@app.tool(description="An embedded text resource and a binary one.")
def resource() -> types.CallToolResult:
    return types.CallToolResult(
        content=[
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(
                    uri="file:///notes.txt", mime_type="text/plain", text="resource text"
                ),
            ),
            types.EmbeddedResource(
                type="resource",
                resource=types.BlobResourceContents(
                    uri="file:///pixel.png", mime_type="image/png", blob=PIXEL_PNG
                ),
            ),
        ]
    )


@app.tool(description="Many lines of output.")
def big(lines: int) -> str:
    return "\n".join(f"line {i}" for i in range(lines))


@app.tool(description="An environment variable and the working directory.")
def env(name: str) -> str:
    return f"{os.environ.get(name, '<unset>')} {os.getcwd()}"


def main() -> None:
    refuse = os.environ.get("MCP_TEST_REFUSE_FILE")
    if refuse and os.path.exists(refuse):
        raise SystemExit(3)
    pid_file = os.environ.get("MCP_TEST_PID_FILE")
    if pid_file:
        with open(pid_file, "a") as f:
            f.write(f"{os.getpid()}\n")
    kind = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if kind == "stdio":
        app.run()
    elif kind == "http":
        app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    elif kind == "sse":
        app.run("sse", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        raise SystemExit(f"unknown transport {kind}")


if __name__ == "__main__":
    main()
