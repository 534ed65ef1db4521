"""``GET /event`` and ``GET /global/event``: the SSE streams."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse

from roost.api.boundary import BoundaryRoute
from roost.api.sse import FrameEncoder, parse_cursor, stream_events
from roost.engine.sessions import SessionService

router = APIRouter(tags=["event"], route_class=BoundaryRoute)


@router.get("/event")
async def events(request: Request) -> EventSourceResponse:
    """Every event of this server's sessions, as SSE; resumable with ``Last-Event-ID``."""
    service: SessionService = request.app.state.sessions
    cursor = parse_cursor(request.headers.get("last-event-id"))
    return EventSourceResponse(
        stream_events(service, cursor, heartbeat_s=request.app.state.heartbeat_s), ping=None
    )


@router.get("/global/event")
async def global_events(request: Request) -> EventSourceResponse:
    """The same events wrapped as OpenCode's ``GlobalEvent``: ``{directory, project, payload}``."""
    service: SessionService = request.app.state.sessions
    encoder = FrameEncoder(
        prefix=b'{"directory":'
        + orjson.dumps(service.options.directory)
        + b',"project":'
        + orjson.dumps(service.options.project_id)
        + b',"payload":',
        suffix=b"}",
    )
    cursor = parse_cursor(request.headers.get("last-event-id"))
    return EventSourceResponse(
        stream_events(service, cursor, encoder, heartbeat_s=request.app.state.heartbeat_s),
        ping=None,
    )
