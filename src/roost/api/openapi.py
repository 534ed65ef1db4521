"""Roost's own OpenAPI document (``GET /doc``): FastAPI's, with the errors Roost really sends.

FastAPI declares a 422 ``HTTPValidationError`` for every route with parameters or a body; Roost
answers those requests with 400 ``BadRequest`` instead (``api/errors.py``), and a body over the
limit with 413 (``api/boundary.py``). So each operation loses the 422 and gains:

- 400 ``BadRequestError`` when it has parameters or a body;
- 413 ``BadRequestError`` when it has a body;
- 401 (and a ``basic`` security scheme) when the server has a password (``api/auth.py``);
- what its route declares with ``errors.responses(...)`` (404, 409, …).

The error schemas are OpenCode's (``errors.ERROR_SCHEMAS``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from roost.api import errors
from roost.errors import BodyTooLarge, InvalidInput

_UNAUTHORIZED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "data"],
    "properties": {
        "name": {"type": "string", "enum": ["UnauthorizedError"]},
        "data": {
            "type": "object",
            "required": ["message"],
            "properties": {"message": {"type": "string"}},
        },
    },
}
"""What ``api/auth.py`` sends with a 401 (OpenCode's own 401 body differs)."""

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document(app: FastAPI, *, basic_auth: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app`` (see the module docstring)."""
    doc = get_openapi(title=app.title, version=app.version, routes=app.routes)
    bad_request = errors.responses(InvalidInput)[400]
    too_large = errors.responses(BodyTooLarge)[413]
    for path_item in doc.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            declared = operation.setdefault("responses", {})
            declared.pop("422", None)
            if operation.get("parameters") or operation.get("requestBody"):
                declared.setdefault("400", bad_request)
            if operation.get("requestBody"):
                declared.setdefault("413", too_large)
            if basic_auth:
                declared["401"] = {
                    "description": "UnauthorizedError",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/UnauthorizedError"}
                        }
                    },
                }
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.update(errors.ERROR_SCHEMAS)
    if basic_auth:
        schemas["UnauthorizedError"] = _UNAUTHORIZED_SCHEMA
        components["securitySchemes"] = {"basic": {"type": "http", "scheme": "basic"}}
        doc["security"] = [{"basic": []}]
    return doc
