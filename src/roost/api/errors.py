"""The one map from domain errors to HTTP statuses and OpenCode's error bodies.

Bodies follow what OpenCode 1.18.34 sends (``opencode-1.18.34-samples/error-*.json``):
``NotFoundError`` 404 ``{"name", "data": {"message"}}``; ``BadRequest`` 400
``{"name", "data": {"message", "kind"}}``; ``SessionBusyError`` 409
``{"_tag", "sessionID", "message"}``; ``McpServerNotFoundError`` 404 ``{"_tag", "name",
"message"}`` and ``McpUnsupportedOAuthError`` 400 ``{"error"}`` (OpenAPI schemas); anything
unexpected is a logged 500 ``UnknownError`` whose ``ref`` ties the response to the log line.

A store that refuses writes (``StorageUnavailable``: disk full, read-only, I/O error) is a 503
``{"name": "ServiceUnavailableError", "data": {"message", "service": "storage", "cause"}}``:
the v1 ``{"name", "data"}`` shape with the name and ``service`` field OpenCode's own 503 body
(``ServiceUnavailableError``) uses. Nothing of the request was stored; the client may retry it.

A body over the size limit is a 413 in the ``BadRequest`` shape (OpenCode has no limit, hence
no body of its own for it), and a 405 carries ``Allow`` with every method of the path (RFC 9110
§15.5.6). ``responses(...)`` declares these bodies in Roost's ``/doc`` with OpenCode's own
schemas (``ERROR_SCHEMAS``, copied from ``opencode-1.18.34-openapi.json``).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from roost.api.responses import JSONBytes as ORJSONResponse
from roost.errors import (
    BodyTooLarge,
    CompactionFailed,
    Conflict,
    ContextOverflow,
    InvalidInput,
    McpOAuthUnsupported,
    McpServerNotFound,
    NotFound,
    PartInUse,
    ProviderError,
    RoostError,
    SessionBusy,
    SnapshotFailed,
    StorageUnavailable,
    StoreClosed,
)
from roost.ids import new_error_ref

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[RoostError], int] = {
    InvalidInput: 400,
    BodyTooLarge: 413,
    NotFound: 404,
    SessionBusy: 409,
    PartInUse: 409,
    Conflict: 409,
    StoreClosed: 503,
    StorageUnavailable: 503,
    ProviderError: 502,
    SnapshotFailed: 500,  # files could not be snapshotted or restored: the server's fault
    ContextOverflow: 413,
    CompactionFailed: 500,
    RoostError: 500,
}


def status_for(exc: RoostError) -> int:
    """The HTTP status of a domain error, found along its MRO."""
    return next(STATUS_BY_ERROR[c] for c in type(exc).__mro__ if c in STATUS_BY_ERROR)


def body_for(exc: RoostError) -> dict[str, Any]:
    """OpenCode's error body for a domain error."""
    if isinstance(exc, McpServerNotFound):
        return {"_tag": "McpServerNotFoundError", "name": exc.name, "message": exc.message}
    if isinstance(exc, McpOAuthUnsupported):
        return {"error": exc.message}
    if isinstance(exc, SessionBusy | PartInUse):
        return {"_tag": "SessionBusyError", "sessionID": exc.session_id, "message": exc.message}
    if isinstance(exc, NotFound):
        return {"name": "NotFoundError", "data": {"message": exc.message}}
    if isinstance(exc, InvalidInput):
        data: dict[str, Any] = {"message": exc.message, "kind": exc.kind}
        if exc.field:
            data["field"] = exc.field
        return {"name": "BadRequest", "data": data}
    if isinstance(exc, StorageUnavailable):
        return {
            "name": "ServiceUnavailableError",
            "data": {"message": exc.message, "service": "storage", "cause": exc.cause},
        }
    if isinstance(exc, BodyTooLarge):
        return {"name": "BadRequest", "data": {"message": exc.message, "kind": "Payload"}}
    return {"name": type(exc).__name__, "data": {"message": exc.message}}


def response_for(exc: RoostError) -> ORJSONResponse:
    """The response for a domain error (a 5xx is logged with a ``ref``)."""
    status = status_for(exc)
    if isinstance(exc, StorageUnavailable):
        # Expected while the disk is full or read-only: one line, no traceback.
        log.warning("refused a request: %s", exc.message)
        return ORJSONResponse(body_for(exc), status_code=status)
    if status >= 500:
        ref = new_error_ref()
        log.error("unexpected %s (ref %s): %s", type(exc).__name__, ref, exc.message)
        return ORJSONResponse(
            {"name": "UnknownError", "data": {"message": exc.message, "ref": ref}},
            status_code=status,
        )
    # The rest of an oversized body is not worth reading: close the connection after the 413.
    headers = {"Connection": "close"} if isinstance(exc, BodyTooLarge) else None
    return ORJSONResponse(body_for(exc), status_code=status, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path, sorted."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


def bad_request(message: str, kind: str) -> ORJSONResponse:
    """A 400 ``BadRequest`` response."""
    return ORJSONResponse(
        {"name": "BadRequest", "data": {"message": message, "kind": kind}}, status_code=400
    )


def _location_kind(loc: tuple[Any, ...]) -> str:
    return {"body": "Payload", "path": "Params", "query": "Query", "header": "Headers"}.get(
        str(loc[0]) if loc else "", "Payload"
    )


def _describe(errors: list[Any]) -> tuple[str, str]:
    """Pydantic's errors as one message (and the ``kind`` of the last one's location).

    A refused scalar is quoted back (``… at 'permission.0.action' (got "Deny")``), so the
    caller sees which value was wrong.
    """
    lines = []
    kind = "Payload"
    for err in errors[:5]:
        loc = tuple(err.get("loc", ()))
        kind = _location_kind(loc)
        where = ".".join(str(p) for p in loc[1:]) or str(loc[0] if loc else "body")
        value = err.get("input")
        got = ""
        if err.get("type") != "missing" and isinstance(value, str | int | float | bool):
            got = f" (got {orjson.dumps(value).decode()})"
        lines.append(f"{err.get('msg', 'invalid')} at {where!r}{got}")
    return "; ".join(lines) or "invalid request", kind


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(RoostError)
    async def _roost(_: Request, exc: RoostError) -> ORJSONResponse:
        return response_for(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> ORJSONResponse:
        message, kind = _describe(list(exc.errors()))
        return bad_request(message, kind)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        if exc.status_code == 404:
            return ORJSONResponse(
                {"name": "NotFoundError", "data": {"message": str(exc.detail)}}, status_code=404
            )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return ORJSONResponse(
            {
                "name": "BadRequest" if exc.status_code < 500 else "UnknownError",
                "data": {"message": str(exc.detail)},
            },
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> ORJSONResponse:
        ref = new_error_ref()
        log.exception("unexpected error (ref %s)", ref, exc_info=exc)
        return ORJSONResponse(
            {
                "name": "UnknownError",
                "data": {
                    "message": "Unexpected server error. Check server logs for details.",
                    "ref": ref,
                },
            },
            status_code=500,
        )


# -- the error responses in Roost's OpenAPI document ----------------------------------------

ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "BadRequestError": {
        "type": "object",
        "required": ["name", "data"],
        "properties": {
            "name": {"type": "string", "enum": ["BadRequest"]},
            "data": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": {"type": "string"},
                    "kind": {
                        "type": "string",
                        "enum": ["Params", "Headers", "Query", "Body", "Payload"],
                    },
                },
            },
        },
    },
    "NotFoundError": {
        "type": "object",
        "required": ["name", "data"],
        "properties": {
            "name": {"type": "string", "enum": ["NotFoundError"]},
            "data": {
                "type": "object",
                "required": ["message"],
                "properties": {"message": {"type": "string"}},
            },
        },
    },
    "SessionBusyError": {
        "type": "object",
        "properties": {
            "_tag": {"type": "string", "enum": ["SessionBusyError"]},
            "sessionID": {"type": "string"},
            "message": {"type": "string"},
        },
        "required": ["_tag", "sessionID", "message"],
        "additionalProperties": False,
    },
    "McpServerNotFoundError": {
        "type": "object",
        "properties": {
            "_tag": {"type": "string", "enum": ["McpServerNotFoundError"]},
            "name": {"type": "string"},
            "message": {"type": "string"},
        },
        "required": ["_tag", "name", "message"],
        "additionalProperties": False,
    },
    "McpUnsupportedOAuthError": {
        "type": "object",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
        "additionalProperties": False,
    },
    "UnknownError": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "enum": ["UnknownError"]},
            "data": {
                "type": "object",
                "properties": {"message": {"type": "string"}, "ref": {"type": "string"}},
                "required": ["message"],
                "additionalProperties": False,
            },
        },
        "required": ["name", "data"],
        "additionalProperties": False,
    },
}
"""OpenCode 1.18.34's schemas of the error bodies ``body_for`` renders (verbatim)."""


def _schema_name(error: type[RoostError]) -> str:
    if issubclass(error, McpServerNotFound):
        return "McpServerNotFoundError"
    if issubclass(error, McpOAuthUnsupported):
        return "McpUnsupportedOAuthError"
    if issubclass(error, SessionBusy | PartInUse):
        return "SessionBusyError"
    if issubclass(error, NotFound):
        return "NotFoundError"
    if issubclass(error, InvalidInput | BodyTooLarge):
        return "BadRequestError"
    return "UnknownError"


def responses(*raised: type[RoostError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route that fails with these errors: status → error schema.

    Use as ``@router.get(..., responses=errors.responses(SessionNotFound))``; the schemas are
    added to the document's components by ``api/openapi.py``.
    """
    out: dict[int | str, dict[str, Any]] = {}
    for error in raised:
        status = next(STATUS_BY_ERROR[c] for c in error.__mro__ if c in STATUS_BY_ERROR)
        name = _schema_name(error)
        entry = out.setdefault(status, {"description": name, "names": []})
        if name not in entry["names"]:
            entry["names"].append(name)
    for entry in out.values():
        refs = [{"$ref": f"#/components/schemas/{n}"} for n in entry.pop("names")]
        schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
        entry["description"] = " | ".join(r["$ref"].rsplit("/", 1)[1] for r in refs)
        entry["content"] = {"application/json": {"schema": schema}}
    return out
