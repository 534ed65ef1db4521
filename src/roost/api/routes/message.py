"""Message routes: listing, fetching, deleting, and the two prompt endpoints."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from roost.api.boundary import BoundaryRoute, let_go
from roost.api.errors import responses
from roost.api.responses import JSONBytes, json_array, message_json, raw_json
from roost.api.wire import (
    CommandBody,
    CountQuery,
    MessageIDPattern,
    PartInput,
    PromptBody,
    SessionIDPattern,
    ShellBody,
)
from roost.engine.admission import PromptInput
from roost.engine.sessions import SessionService
from roost.errors import InvalidInput, NotFound

router = APIRouter(tags=["message"], route_class=BoundaryRoute)
SessionIDParam = Annotated[str, Path(alias="sessionID", pattern=SessionIDPattern)]
MessageIDParam = Annotated[str, Path(alias="messageID", pattern=MessageIDPattern)]


def _service(request: Request) -> SessionService:
    service: SessionService = request.app.state.sessions
    return service


_INLINE_PARTS = 1000
"""Prompts with more parts are turned into dicts in a worker thread (≈2 µs a part)."""


def _dump_parts(parts: list[PartInput]) -> list[dict[str, Any]]:
    return [p.model_dump(by_alias=True, exclude_none=True) for p in parts]


async def _prompt_input(body: PromptBody) -> PromptInput:
    if len(body.parts) > _INLINE_PARTS:
        # One ``model_dump`` per call: the thread gives the GIL back between parts.
        parts = await anyio.to_thread.run_sync(_dump_parts, body.parts)
    else:
        parts = _dump_parts(body.parts)
    return PromptInput(
        parts=parts,
        message_id=body.message_id,
        agent=body.agent,
        provider_id=body.model.provider_id if body.model else None,
        model_id=body.model.model_id if body.model else None,
        variant=body.variant,
        no_reply=body.no_reply,
        system=body.system,
        tools=body.tools,
    )


@router.get("/session/{sessionID}/message", responses=responses(NotFound))
async def list_messages(
    request: Request,
    session_id: SessionIDParam,
    limit: CountQuery = None,
    before: Annotated[str | None, Query()] = None,
) -> Response:
    """Messages with their parts, oldest first; ``limit`` keeps the newest N."""
    rows = await _service(request).list_messages(session_id, limit=limit, before=before)
    return await json_array(message_json(r.info, r.parts) for r in rows)


@router.get("/session/{sessionID}/message/{messageID}", responses=responses(NotFound))
async def get_message(
    request: Request, session_id: SessionIDParam, message_id: MessageIDParam
) -> Response:
    """One message with its parts."""
    row = await _service(request).get_message(session_id, message_id)
    return raw_json(message_json(row.info, row.parts))


@router.delete("/session/{sessionID}/message/{messageID}", responses=responses(NotFound))
async def delete_message(
    request: Request, session_id: SessionIDParam, message_id: MessageIDParam
) -> Response:
    """Remove a message and its parts."""
    await _service(request).delete_message(session_id, message_id)
    return JSONBytes(True)


@router.post("/session/{sessionID}/message", responses=responses(InvalidInput, NotFound))
async def prompt(request: Request, session_id: SessionIDParam, body: PromptBody) -> Response:
    """Send a prompt and answer with the assistant message once its turn ends."""
    prompt_input = await _prompt_input(body)
    row = await _service(request).prompt(session_id, prompt_input)
    await let_go(prompt_input.parts)
    return raw_json(message_json(row.info, row.parts))


@router.post("/session/{sessionID}/command", responses=responses(InvalidInput, NotFound))
async def command(request: Request, session_id: SessionIDParam, body: CommandBody) -> Response:
    """Run a slash command; answer with the last assistant message once it has ended."""
    row = await _service(request).command(
        session_id,
        body.command,
        body.arguments,
        agent=body.agent,
        model=body.model,
        message_id=body.message_id,
        parts=[p.model_dump(by_alias=True, exclude_none=True) for p in body.parts],
    )
    return raw_json(message_json(row.info, row.parts))


@router.post("/session/{sessionID}/shell", responses=responses(InvalidInput, NotFound))
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


@router.post(
    "/session/{sessionID}/prompt_async",
    status_code=204,
    responses=responses(InvalidInput, NotFound),
)
async def prompt_async(request: Request, session_id: SessionIDParam, body: PromptBody) -> Response:
    """Admit a prompt: 204 only once it is stored."""
    prompt_input = await _prompt_input(body)
    await _service(request).prompt_async(session_id, prompt_input)
    await let_go(prompt_input.parts)
    return Response(status_code=204)
