"""How MCP connections fail, without importing the SDK (which takes a second to import)."""

from __future__ import annotations


class McpConnectError(Exception):
    """Connecting (or listing tools) failed; ``message`` says why, for ``MCPStatusFailed``.

    Attributes:
        needs_auth: A remote server answered 401 (OpenCode's ``needs_auth`` status).
    """

    def __init__(self, message: str, *, needs_auth: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.needs_auth = needs_auth


class McpCallError(Exception):
    """A tool call failed in the protocol or the transport (not an ``isError`` result).

    Attributes:
        connection_lost: The connection is gone (closed, or its transport failed).
    """

    def __init__(self, message: str, *, connection_lost: bool) -> None:
        super().__init__(message)
        self.message = message
        self.connection_lost = connection_lost
