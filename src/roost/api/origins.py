"""Which web pages may talk to Roost: the origin and ``Host`` checks in front of every route.

Roost runs shell commands on the user's machine, so a page on another origin must not be able
to drive it, whatever the request looks like (a ``text/plain`` POST or a form POST needs no
CORS pre-flight, and a no-cors GET carries no ``Origin``). ``OriginGuard`` refuses with 403,
before any route or authentication runs:

- a request whose ``Origin`` is neither the server's own origin (same-origin: the ``Origin``
  names the ``Host`` the request was sent to), nor a loopback origin
  (``http(s)://localhost|127.0.0.1|[::1]`` on any port), nor one the operator named
  (``roost serve --cors ORIGIN``, config ``server.cors``, as ``opencode serve --cors``);
  ``Origin: null`` (sandboxed frames, ``file:``) is another origin too;
- a request without an allowed ``Origin`` that the browser marks ``Sec-Fetch-Site:
  cross-site`` (Fetch Metadata, W3C "Fetch Metadata Request Headers");
- a request whose ``Host`` is not a name of this server: a loopback name, an IP literal, the
  ``--hostname`` it binds, or a configured name (``--allow-host``, config
  ``server.allowedHosts``). This stops DNS rebinding, where an attacker's domain is re-pointed
  at 127.0.0.1 and the browser then treats Roost as same-origin with the attacker's page. An IP
  literal is always allowed: a page can only be same-origin with an IP it was served from.

Clients that are not browsers (the TUI, the CLI, the SDKs) send no ``Origin`` and pass. CORS
response headers for the allowed origins come from Starlette's ``CORSMiddleware``
(``api/app.py``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette._utils import parse_host_header
from starlette.types import ASGIApp, Receive, Scope, Send

from roost.api.responses import JSONBytes

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
LOOPBACK_ORIGIN_REGEX = r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d{1,5})?"
"""A loopback origin on any port (Starlette's ``allow_origin_regex`` matches it in full)."""
_LOOPBACK_ORIGIN = re.compile(LOOPBACK_ORIGIN_REGEX)
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, IPv6 with or without brackets) is loopback."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OriginPolicy:
    """What ``OriginGuard`` accepts (see the module docstring).

    Attributes:
        cors: Extra allowed origins, exactly as browsers send them (``https://app.example``,
            no trailing slash); ``*`` allows every origin (an explicit opt-out).
        hosts: Extra allowed ``Host`` names (lower case, without port).
    """

    cors: frozenset[str] = frozenset()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def build(
        cls, *, hostname: str, cors: Iterable[str] = (), hosts: Iterable[str] = ()
    ) -> OriginPolicy:
        """The policy of a server bound to ``hostname`` with the operator's extra names.

        Raises:
            ValueError: A ``cors`` entry is not ``*`` or an ``http(s)://host[:port]`` origin.
        """
        origins = set()
        for entry in cors:
            origin = entry.strip().rstrip("/")
            parts = urlsplit(origin)
            if origin != "*" and (
                parts.scheme not in ("http", "https") or not parts.netloc or parts.path
            ):
                raise ValueError(f"not an origin (scheme://host[:port]): {entry!r}")
            origins.add(origin if origin == "*" else f"{parts.scheme}://{parts.netloc.lower()}")
        names = {h.strip().lower() for h in hosts if h.strip()}
        bound = hostname.strip("[]").lower()
        if bound not in _WILDCARD_BINDS:
            names.add(bound)
        return cls(cors=frozenset(origins), hosts=frozenset(names))

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (a ``Host`` header's name, without port) names this server."""
        name = host.strip("[]").lower()
        return name in LOOPBACK_NAMES or name in self.hosts or _is_ip_literal(name)

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        """Whether a request carrying ``Origin: origin``, sent to ``Host: host_header``, may
        proceed."""
        origin = origin.lower()
        if "*" in self.cors or origin in self.cors or _LOOPBACK_ORIGIN.fullmatch(origin):
            return True
        parts = urlsplit(origin)
        return (
            host_header is not None
            and parts.scheme in ("http", "https")
            and parts.netloc == host_header.lower()
        )


class OriginGuard:
    """Pure ASGI middleware enforcing an ``OriginPolicy`` (it must not buffer SSE)."""

    def __init__(self, app: ASGIApp, *, policy: OriginPolicy) -> None:
        self.app = app
        self.policy = policy

    def refusal(self, scope: Scope) -> str | None:
        """Why the request is refused, or None when it may proceed."""
        headers = dict(scope.get("headers") or [])
        raw_host = headers.get(b"host")
        host_header = raw_host.decode("latin-1") if raw_host is not None else None
        if host_header is not None:
            parsed = parse_host_header(host_header)
            if parsed is None or not self.policy.host_allowed(parsed.host):
                return (
                    f"Host {host_header!r} is not a name of this server; start roost serve "
                    "with --allow-host NAME to accept it"
                )
        raw_origin = headers.get(b"origin")
        if raw_origin is not None:
            origin = raw_origin.decode("latin-1")
            if not self.policy.origin_allowed(origin, host_header):
                return (
                    f"cross-origin request from {origin!r} refused; start roost serve with "
                    "--cors ORIGIN to allow that origin"
                )
            return None
        if headers.get(b"sec-fetch-site") == b"cross-site":
            return "cross-site request refused"
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse with 403 (OpenCode's error shape) or pass the request on."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        reason = self.refusal(scope)
        if reason is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        response = JSONBytes({"name": "ForbiddenError", "data": {"message": reason}}, 403)
        await response(scope, receive, send)
