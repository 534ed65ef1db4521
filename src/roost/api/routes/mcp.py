"""MCP routes: server statuses, adding a server, connect/disconnect, and the OAuth routes.

Shapes: ``mcp.*`` operations of ``opencode-1.18.34-openapi.json``. ``GET /mcp`` and ``POST /mcp``
answer a map of ``MCPStatus`` by server name; connect and disconnect answer ``true``. Roost does
not run OAuth flows: the ``/auth`` routes answer 400 ``McpUnsupportedOAuthError`` (removing
credentials, of which there are none, succeeds). An unknown name is 404 ``McpServerNotFoundError``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from roost.api.boundary import BoundaryRoute
from roost.api.errors import responses
from roost.api.responses import JSONBytes
from roost.engine.mcp import McpServers
from roost.errors import InvalidInput, McpOAuthUnsupported, McpServerNotFound
from roost.model.mcp import McpConfig

router = APIRouter(tags=["mcp"], route_class=BoundaryRoute)
_AUTH_ERRORS = responses(McpOAuthUnsupported, McpServerNotFound)


def _mcp(request: Request) -> McpServers:
    mcp: McpServers = request.app.state.sessions.mcp
    return mcp


class McpAddBody(BaseModel):
    """``POST /mcp``: ``{name, config}``, no other fields."""

    model_config = ConfigDict(extra="forbid")

    name: str
    config: McpConfig


@router.get("/mcp")
async def mcp_status(request: Request) -> Response:
    """Every configured server's ``MCPStatus``."""
    return JSONBytes(_mcp(request).status())


@router.post("/mcp", responses=responses(InvalidInput))
async def mcp_add(request: Request, body: McpAddBody) -> Response:
    """Add (or replace) a server at run time and try to connect it; answers every status."""
    return JSONBytes(await _mcp(request).add(body.name, body.config))


@router.post("/mcp/{name}/connect", responses=responses(McpServerNotFound))
async def mcp_connect(request: Request, name: str) -> Response:
    """Connect the server now; the status says how it went."""
    return JSONBytes(await _mcp(request).connect(name))


@router.post("/mcp/{name}/disconnect", responses=responses(McpServerNotFound))
async def mcp_disconnect(request: Request, name: str) -> Response:
    """Close the connection (a local server is stopped); the status becomes disabled."""
    return JSONBytes(await _mcp(request).disconnect(name))


@router.post("/mcp/{name}/auth", responses=_AUTH_ERRORS)
@router.post("/mcp/{name}/auth/callback", responses=_AUTH_ERRORS)
@router.post("/mcp/{name}/auth/authenticate", responses=_AUTH_ERRORS)
async def mcp_auth(request: Request, name: str) -> Response:
    """OAuth is not supported: 400 ``McpUnsupportedOAuthError`` (404 for an unknown name)."""
    _mcp(request).start_oauth(name)
    raise AssertionError("start_oauth always raises")


@router.delete("/mcp/{name}/auth", responses=responses(McpServerNotFound))
async def mcp_auth_remove(request: Request, name: str) -> Response:
    """Remove stored OAuth credentials: Roost keeps none, so this succeeds."""
    _mcp(request).require(name)
    return JSONBytes({"success": True})
