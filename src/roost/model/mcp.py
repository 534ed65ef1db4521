"""MCP server configuration entries and statuses, in OpenCode's shapes.

Source: ``McpLocalConfig``, ``McpRemoteConfig``, ``McpOAuthConfig`` and ``MCPStatus`` in
``opencode-1.18.34-openapi.json``. The config's top-level ``mcp`` maps a server name to an entry;
an entry is local (a command Roost starts and talks to over stdio) or remote (a URL), and no other
fields are allowed. An entry may also be just ``{"enabled": bool}``, which switches a server
defined in another config file on or off (the files are merged before this is parsed).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class McpLocalConfig(_Entry):
    """A server Roost starts: ``command`` runs with cwd = ``cwd`` (else the project directory)
    and the server's environment plus ``environment``."""

    type: Literal["local"]
    command: list[str] = Field(min_length=1)
    cwd: str | None = None
    environment: dict[str, str] | None = None
    enabled: bool | None = None
    timeout: int | None = Field(default=None, gt=0)
    """Milliseconds: connecting and listing tools, and each tool call."""


class McpOAuthConfig(_Entry):
    """OAuth client settings of a remote server (OpenCode's camelCase names)."""

    client_id: str | None = Field(default=None, alias="clientId")
    client_secret: str | None = Field(default=None, alias="clientSecret")
    scope: str | None = None
    callback_port: int | None = Field(default=None, alias="callbackPort", ge=1, le=65535)
    redirect_uri: str | None = Field(default=None, alias="redirectUri")


class McpRemoteConfig(_Entry):
    """A server at ``url``: streamable HTTP is tried first, then SSE."""

    type: Literal["remote"]
    url: str
    enabled: bool | None = None
    headers: dict[str, str] | None = None
    oauth: McpOAuthConfig | Literal[False] | None = None
    """OAuth is on unless this is ``false``."""
    timeout: int | None = Field(default=None, gt=0)
    """Milliseconds: connecting and listing tools, and each tool call."""


McpConfig = Annotated[McpLocalConfig | McpRemoteConfig, Field(discriminator="type")]
"""One server entry."""

_ENTRY: TypeAdapter[McpLocalConfig | McpRemoteConfig] = TypeAdapter(McpConfig)
_TOGGLE: TypeAdapter[dict[Literal["enabled"], bool]] = TypeAdapter(dict[Literal["enabled"], bool])


def parse_entry(value: Any) -> McpLocalConfig | McpRemoteConfig:
    """Validate one entry (``McpLocalConfig`` or ``McpRemoteConfig``).

    Raises:
        ValueError: It fits neither schema; the message says where.
    """
    try:
        return _ENTRY.validate_python(value)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from exc


def parse_servers(value: Any) -> dict[str, McpLocalConfig | McpRemoteConfig | None]:
    """The config's ``mcp`` object, by server name; None for an ``{"enabled": …}``-only entry
    that names no server defined elsewhere.

    Raises:
        ValueError: ``value`` is not an object, or an entry fits no schema.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"mcp must be an object mapping names to servers, not {value!r}")
    servers: dict[str, McpLocalConfig | McpRemoteConfig | None] = {}
    for name, entry in value.items():
        if isinstance(entry, dict) and "type" not in entry:
            try:
                _TOGGLE.validate_python(entry)
            except ValidationError as exc:
                raise ValueError(f"mcp.{name}: {_describe(exc)}") from exc
            servers[str(name)] = None
            continue
        try:
            servers[str(name)] = parse_entry(entry)
        except ValueError as exc:
            raise ValueError(f"mcp.{name}: {exc}") from exc
    return servers


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
    )


def connected() -> dict[str, Any]:
    """``MCPStatusConnected``."""
    return {"status": "connected"}


def disabled() -> dict[str, Any]:
    """``MCPStatusDisabled``."""
    return {"status": "disabled"}


def failed(error: str) -> dict[str, Any]:
    """``MCPStatusFailed``."""
    return {"status": "failed", "error": error}


def needs_auth() -> dict[str, Any]:
    """``MCPStatusNeedsAuth``: the server answered 401 and OAuth was not turned off."""
    return {"status": "needs_auth"}
