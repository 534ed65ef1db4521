"""Optional HTTP basic auth, with the scheme of OpenCode's ``OPENCODE_SERVER_PASSWORD``.

When a password is set, every request must carry ``Authorization: Basic`` with that password
(username ``opencode`` unless configured otherwise); otherwise it gets 401 and a
``WWW-Authenticate`` challenge. CORS pre-flight requests (``OPTIONS``) pass.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send


class BasicAuth:
    """Pure ASGI middleware (it must not buffer SSE responses)."""

    def __init__(self, app: ASGIApp, *, username: str, password: str) -> None:
        self.app = app
        self._expected = (username.encode(), password.encode())

    def _allowed(self, header: bytes | None) -> bool:
        if not header or not header.lower().startswith(b"basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip()).partition(b":")
        except (binascii.Error, ValueError):
            return False
        return secrets.compare_digest(user, self._expected[0]) & secrets.compare_digest(
            password, self._expected[1]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the credentials, then pass the request on or answer 401."""
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization")
        if self._allowed(header):
            await self.app(scope, receive, send)
            return
        body = b'{"name":"UnauthorizedError","data":{"message":"Unauthorized"}}'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Basic realm="roost"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
