"""Session routes: ``/session``, ``/session/{id}``, ``/children``, ``/status``, ``/abort``,
``/fork``, ``/revert``, ``/unrevert``, ``/diff``, ``/summarize`` and the part routes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from roost.api.boundary import BoundaryRoute
from roost.api.errors import responses
from roost.api.responses import JSONBytes, json_array, raw_json
from roost.api.wire import (
    CountQuery,
    EpochMsQuery,
    SessionCreateBody,
    SessionIDPattern,
    SessionUpdateBody,
    SummarizeBody,
)
from roost.engine.sessions import SessionService
from roost.errors import InvalidInput, NotFound, PartInUse

router = APIRouter(tags=["session"], route_class=BoundaryRoute)
SessionIDParam = Annotated[str, Path(alias="sessionID", pattern=SessionIDPattern)]


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


@router.get("/session")
async def list_sessions(
    request: Request,
    roots: Annotated[str | None, Query()] = None,
    limit: CountQuery = None,
    search: Annotated[str | None, Query()] = None,
    start: EpochMsQuery = None,
    directory: Annotated[str | None, Query()] = None,
) -> Response:
    """List sessions, children included; ``?roots=true`` leaves children out.

    Like OpenCode, at most 100 are listed unless ``limit`` asks for another number.
    """
    rows = await _service(request).list_sessions(
        roots=(roots or "").lower() == "true",
        limit=100 if limit is None else limit,
        search=search,
        start_ms=int(start) if start is not None else None,
        directory=None,
    )
    del directory  # one project per server: every session shares its directory
    return await json_array(rows)


@router.post("/session", responses=responses(InvalidInput))
async def create_session(request: Request, body: SessionCreateBody | None = None) -> Response:
    """Create a session (optionally a child, with ``parentID``)."""
    body = body or SessionCreateBody()
    info = await _service(request).create_session(
        parent_id=body.parent_id,
        title=body.title,
        agent=body.agent,
        model=body.model.model_dump(by_alias=True, exclude_none=True) if body.model else None,
        metadata=body.metadata,
        permission=body.permission,
    )
    return JSONBytes(info)


@router.get("/session/status")
async def session_status(request: Request) -> Response:
    """Status of every busy session; idle sessions are absent."""
    return JSONBytes(await _service(request).statuses())


@router.get("/session/{sessionID}", responses=responses(NotFound))
async def get_session(request: Request, session_id: SessionIDParam) -> Response:
    """One session."""
    return raw_json(await _service(request).get_session(session_id))


@router.patch("/session/{sessionID}", responses=responses(NotFound))
async def update_session(
    request: Request, session_id: SessionIDParam, body: SessionUpdateBody
) -> Response:
    """Change title, metadata, permission or archive time."""
    changes = body.model_dump(by_alias=True, exclude_none=True)
    return JSONBytes(await _service(request).update_session(session_id, changes))


@router.delete("/session/{sessionID}", responses=responses(NotFound))
async def delete_session(request: Request, session_id: SessionIDParam) -> Response:
    """Delete a session and its children, stopping whatever they run."""
    await _service(request).delete_session(session_id)
    return JSONBytes(True)


@router.get("/session/{sessionID}/children", responses=responses(NotFound))
async def session_children(request: Request, session_id: SessionIDParam) -> Response:
    """Direct child sessions."""
    return await json_array(await _service(request).children(session_id))


@router.post("/session/{sessionID}/abort", responses=responses(NotFound))
async def abort_session(request: Request, session_id: SessionIDParam) -> Response:
    """Stop the executing turn; always answers true."""
    return JSONBytes(await _service(request).abort(session_id))


@router.post("/session/{sessionID}/summarize", responses=responses(InvalidInput, NotFound))
async def summarize_session(
    request: Request, session_id: SessionIDParam, body: SummarizeBody
) -> Response:
    """Compact the session: true once the model's summary is stored; a compaction that ends
    without one (failed, aborted, server stopping) is an error that says why."""
    await _service(request).summarize(
        session_id, provider_id=body.provider_id, model_id=body.model_id, auto=body.auto
    )
    return JSONBytes(True)


class ForkBody(BaseModel):
    """``POST /session/{id}/fork``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    message_id: str | None = Field(default=None, alias="messageID", pattern=r"^msg")


class RevertBody(BaseModel):
    """``POST /session/{id}/revert``."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    message_id: str = Field(alias="messageID", pattern=r"^msg")
    part_id: str | None = Field(default=None, alias="partID", pattern=r"^prt")


@router.post("/session/{sessionID}/fork", responses=responses(NotFound))
async def fork_session(
    request: Request, session_id: SessionIDParam, body: ForkBody | None = None
) -> Response:
    """Copy the session's messages (before ``messageID``) into a new session."""
    body = body or ForkBody()
    return JSONBytes(await _service(request).fork(session_id, body.message_id))


@router.post("/session/{sessionID}/revert", responses=responses(NotFound))
async def revert_session(
    request: Request, session_id: SessionIDParam, body: RevertBody
) -> Response:
    """Revert the session to a message, restoring files; a running turn is aborted first."""
    return JSONBytes(await _service(request).revert(session_id, body.message_id, body.part_id))


@router.post("/session/{sessionID}/unrevert", responses=responses(NotFound))
async def unrevert_session(request: Request, session_id: SessionIDParam) -> Response:
    """Put the reverted files back and clear the revert mark."""
    return JSONBytes(await _service(request).unrevert(session_id))


@router.get("/session/{sessionID}/diff", responses=responses(NotFound))
async def session_diff(
    request: Request,
    session_id: SessionIDParam,
    message_id: Annotated[str | None, Query(alias="messageID", pattern=r"^msg")] = None,
) -> Response:
    """Files changed by one turn (``messageID``, a user message) or by the whole session."""
    return JSONBytes(await _service(request).diff(session_id, message_id))


@router.delete(
    "/session/{sessionID}/message/{messageID}/part/{partID}",
    responses=responses(NotFound, PartInUse),
)
async def delete_part(
    request: Request,
    session_id: SessionIDParam,
    message_id: Annotated[str, Path(alias="messageID", pattern=r"^msg")],
    part_id: Annotated[str, Path(alias="partID", pattern=r"^prt")],
) -> Response:
    """Remove a part; 409 for an open tool part of a running turn (abort first)."""
    await _service(request).delete_part(session_id, message_id, part_id)
    return JSONBytes(True)


@router.patch(
    "/session/{sessionID}/message/{messageID}/part/{partID}",
    responses=responses(InvalidInput, NotFound, PartInUse),
)
async def update_part(
    request: Request,
    session_id: SessionIDParam,
    message_id: Annotated[str, Path(alias="messageID", pattern=r"^msg")],
    part_id: Annotated[str, Path(alias="partID", pattern=r"^prt")],
    body: dict[str, Any],
) -> Response:
    """Replace a part; 409 for an open tool part of a running turn (abort first)."""
    part = await _service(request).update_part(session_id, message_id, part_id, body)
    return JSONBytes(part)
