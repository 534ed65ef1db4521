"""The ASGI app: OpenCode's v1 HTTP API over a ``SessionService``.

Handlers only translate: parse the request, call one engine method, render the result. The
lifespan starts the service (recovery, queued prompts) before the first request is answered and
stops it (interrupting turns durably) on shutdown. Request bodies are limited, parsed and checked
at the boundary (``api/boundary.py``) before any handler sees them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sse_starlette.sse import AppStatus
from starlette.responses import Response

from roost import __version__
from roost.api import errors, openapi
from roost.api.auth import BasicAuth
from roost.api.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit
from roost.api.origins import LOOPBACK_ORIGIN_REGEX, OriginGuard, OriginPolicy
from roost.api.responses import JSONBytes
from roost.api.routes import event, files, location, mcp, message, meta, requests, session
from roost.engine.sessions import SessionService


def create_app(
    service: SessionService,
    *,
    password: str | None = None,
    username: str = "opencode",
    data_dir: Path | None = None,
    config_dir: Path | None = None,
    heartbeat_s: float = 10.0,
    origins: OriginPolicy | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """Build the app around a not-yet-started service (the lifespan starts and stops it).

    ``origins`` decides which web pages may call it (``api/origins.py``); the default accepts
    loopback and same-origin pages only. Middleware, outermost first: the origin and host
    guard, basic auth (when ``password`` is set), CORS headers for the allowed origins, the
    body size limit.

    Args:
        max_body_bytes: Longest request body accepted; longer ones get a 413.
    """
    policy = origins or OriginPolicy.build(hostname="127.0.0.1")
    # Event streams end when the service has delivered the final events of a stop
    # (``SessionService.interrupt``), not as soon as the signal arrives.
    AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]  # sse-starlette is untyped here

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="Roost",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.sessions = service
    app.state.home = Path.home()
    app.state.data = data_dir or Path()
    app.state.config_dir = config_dir or Path()
    app.state.heartbeat_s = heartbeat_s
    app.state.max_body_bytes = max_body_bytes
    errors.install(app)
    # The routes go straight onto the app's router instead of through ``include_router``:
    # FastAPI 0.165 keeps an included router as a nested router that matches each request
    # twice through it, about 40 % of the Python calls of a small request here. None of the
    # routers has a prefix or dependencies, so their routes are complete as they are.
    routers = (session, message, event, meta, requests, mcp, files, location)
    for module in routers:
        app.router.routes.extend(module.router.routes)

    @app.get("/doc", include_in_schema=False)
    async def openapi_document() -> Response:
        """Roost's own OpenAPI document (``api/openapi.py``), built on first use."""
        if app.openapi_schema is None:
            app.openapi_schema = openapi.document(app, basic_auth=bool(password))
        return JSONBytes(app.openapi_schema)

    # add_middleware wraps: the last one added runs first.
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=sorted(policy.cors),
        allow_origin_regex=LOOPBACK_ORIGIN_REGEX,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    if password:
        app.add_middleware(BasicAuth, username=username, password=password)
    app.add_middleware(OriginGuard, policy=policy)
    return app
