"""Permission and question routes: list pending requests, reply, reject.

Shapes: ``PermissionRequest`` / ``QuestionRequest`` in ``opencode-1.18.34-openapi.json``. A reply
to a request that is not pending (answered, cancelled by an abort or a deletion, or unknown) is a
404 ``NotFoundError``; OpenCode answers such late replies with success.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from roost.api.boundary import BoundaryRoute
from roost.api.errors import responses
from roost.api.responses import JSONBytes, json_array, raw_json
from roost.api.wire import SessionIDPattern
from roost.engine.sessions import SessionService
from roost.errors import NotFound

router = APIRouter(tags=["permission", "question"], route_class=BoundaryRoute)


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PermissionReplyBody(_Body):
    """``POST /permission/{requestID}/reply``."""

    reply: Literal["once", "always", "reject"]
    message: str | None = None


class LegacyPermissionBody(_Body):
    """``POST /session/{sessionID}/permissions/{permissionID}`` (older clients)."""

    response: Literal["once", "always", "reject"]


class QuestionReplyBody(_Body):
    """``POST /question/{requestID}/reply``: one list of chosen labels per question."""

    answers: list[list[str]]


@router.get("/permission")
async def list_permissions(request: Request) -> Response:
    """Pending permission requests."""
    return await json_array(await _service(request).pending_permissions())


@router.post("/permission/{requestID}/reply", responses=responses(NotFound))
async def reply_permission(
    request: Request,
    request_id: Annotated[str, Path(alias="requestID", pattern=r"^per")],
    body: PermissionReplyBody,
) -> Response:
    """Answer a permission request: once, always or reject."""
    await _service(request).reply_permission(request_id, body.reply)
    return JSONBytes(True)


@router.post("/session/{sessionID}/permissions/{permissionID}", responses=responses(NotFound))
async def reply_permission_legacy(
    request: Request,
    session_id: Annotated[str, Path(alias="sessionID", pattern=SessionIDPattern)],
    permission_id: Annotated[str, Path(alias="permissionID", pattern=r"^per")],
    body: LegacyPermissionBody,
) -> Response:
    """The older form of the permission reply."""
    del session_id  # the request id alone names the request
    await _service(request).reply_permission(permission_id, body.response)
    return JSONBytes(True)


@router.get("/question")
async def list_questions(request: Request) -> Response:
    """Pending question requests."""
    return await json_array(await _service(request).pending_questions())


@router.post("/question/{requestID}/reply", responses=responses(NotFound))
async def reply_question(
    request: Request,
    request_id: Annotated[str, Path(alias="requestID", pattern=r"^que")],
    body: QuestionReplyBody,
) -> Response:
    """Answer a question request."""
    await _service(request).reply_question(request_id, body.answers)
    return JSONBytes(True)


@router.post("/question/{requestID}/reject", responses=responses(NotFound))
async def reject_question(
    request: Request,
    request_id: Annotated[str, Path(alias="requestID", pattern=r"^que")],
) -> Response:
    """Dismiss a question request; the tool call fails and the model is told."""
    await _service(request).reply_question(request_id, None)
    return JSONBytes(True)


@router.get("/session/{sessionID}/todo", responses=responses(NotFound))
async def session_todos(
    request: Request,
    session_id: Annotated[str, Path(alias="sessionID", pattern=SessionIDPattern)],
) -> Response:
    """The session's todo list."""
    return raw_json(await _service(request).todos(session_id))
