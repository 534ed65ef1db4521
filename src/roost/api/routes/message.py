"""Message routes: listing, fetching, deleting, and the two prompt endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from roost.api.responses import JSONBytes, message_json, raw_json, raw_json_array
from roost.api.wire import MessageIDPattern, PromptBody, SessionIDPattern, ShellBody
from roost.engine.admission import PromptInput
from roost.engine.sessions import SessionService

router = APIRouter(tags=["message"])
SessionIDParam = Annotated[str, Path(alias="sessionID", pattern=SessionIDPattern)]
MessageIDParam = Annotated[str, Path(alias="messageID", pattern=MessageIDPattern)]


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


def _prompt_input(body: PromptBody) -> PromptInput:
    return PromptInput(
        parts=[p.model_dump(by_alias=True, exclude_none=True) for p in body.parts],
        message_id=body.message_id,
        agent=body.agent,
        provider_id=body.model.provider_id if body.model else None,
        model_id=body.model.model_id if body.model else None,
        variant=body.variant,
        no_reply=body.no_reply,
        system=body.system,
        tools=body.tools,
    )


@router.get("/session/{sessionID}/message")
async def list_messages(
    request: Request,
    session_id: SessionIDParam,
    limit: Annotated[int | None, Query(ge=0)] = None,
    before: Annotated[str | None, Query()] = None,
) -> Response:
    """Messages with their parts, oldest first; ``limit`` keeps the newest N."""
    rows = await _service(request).list_messages(session_id, limit=limit, before=before)
    return raw_json_array(message_json(r.info, r.parts) for r in rows)


@router.get("/session/{sessionID}/message/{messageID}")
async def get_message(
    request: Request, session_id: SessionIDParam, message_id: MessageIDParam
) -> Response:
    """One message with its parts."""
    row = await _service(request).get_message(session_id, message_id)
    return raw_json(message_json(row.info, row.parts))


@router.delete("/session/{sessionID}/message/{messageID}")
async def delete_message(
    request: Request, session_id: SessionIDParam, message_id: MessageIDParam
) -> Response:
    """Remove a message and its parts."""
    await _service(request).delete_message(session_id, message_id)
    return JSONBytes(True)


@router.post("/session/{sessionID}/message")
async def prompt(request: Request, session_id: SessionIDParam, body: PromptBody) -> Response:
    """Send a prompt and answer with the assistant message once its turn ends."""
    row = await _service(request).prompt(session_id, _prompt_input(body))
    return raw_json(message_json(row.info, row.parts))


@router.post("/session/{sessionID}/shell")
async def shell(request: Request, session_id: SessionIDParam, body: ShellBody) -> Response:
    """Run a user's shell command; answer with its assistant message (one ``bash`` part)."""
    row = await _service(request).shell(
        session_id,
        body.command,
        agent=body.agent,
        provider_id=body.model.provider_id if body.model else None,
        model_id=body.model.model_id if body.model else None,
        message_id=body.message_id,
    )
    return raw_json(message_json(row.info, row.parts))


@router.post("/session/{sessionID}/prompt_async", status_code=204)
async def prompt_async(request: Request, session_id: SessionIDParam, body: PromptBody) -> Response:
    """Admit a prompt: 204 only once it is stored."""
    await _service(request).prompt_async(session_id, _prompt_input(body))
    return Response(status_code=204)
