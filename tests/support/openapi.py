"""Validate JSON against a component schema of OpenCode's OpenAPI document.

The document is ``/work/shared/reference/opencode-1.18.34-openapi.json`` (OpenAPI 3.1, whose
schemas are JSON Schema 2020-12). ``validate(instance, "Session")`` checks ``instance`` against
``#/components/schemas/Session``, resolving every ``$ref`` inside the same document.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

# jsonschema ships no type stubs, and types-jsonschema is not a dependency.
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path("/work/shared/reference/opencode-1.18.34-openapi.json")
_SPEC_URI = "urn:opencode-1.18.34-openapi"


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI document, parsed once."""
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return loaded


@cache
def _validator(component: str) -> Draft202012Validator:
    if component not in spec()["components"]["schemas"]:
        raise KeyError(f"no schema #/components/schemas/{component} in {SPEC_PATH.name}")
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
    return Draft202012Validator(
        {"$ref": f"{_SPEC_URI}#/components/schemas/{component}"}, registry=registry
    )


def validate(instance: Any, component: str) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` matches the named component.

    For ``anyOf`` unions (``Message``, ``Part``) the error names the best-matching branch.
    """
    _validator(component).validate(instance)


def validate_event(frame: dict[str, Any], component: str) -> None:
    """Check an SSE frame ``{"type", "properties"}`` against an ``Event*`` component.

    The components also require OpenCode's ``id`` in the frame; Roost sends its event id as
    the SSE ``id:`` line instead (``api/sse.py``), so only ``type`` and ``properties`` are
    checked.
    """
    schema = spec()["components"]["schemas"][component]["properties"]
    Draft202012Validator(schema["type"]).validate(frame["type"])
    pointer = f"{_SPEC_URI}#/components/schemas/{component}/properties/properties"
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
    Draft202012Validator({"$ref": pointer}, registry=registry).validate(frame["properties"])


def _pointer_token(token: str) -> str:
    """A JSON Pointer reference token (RFC 6901), percent-encoded for a URI fragment."""
    return quote(token.replace("~", "~0").replace("/", "~1"), safe="~")


@cache
def _response_validator(method: str, path: str, status: int) -> Draft202012Validator:
    operation = spec()["paths"][path][method.lower()]
    if str(status) not in operation["responses"]:
        raise KeyError(f"{method} {path} declares no {status} response in {SPEC_PATH.name}")
    pointer = "/".join(
        _pointer_token(t)
        for t in ("paths", path, method.lower(), "responses", str(status), "content")
    )
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
    schema = {"$ref": f"{_SPEC_URI}#/{pointer}/application~1json/schema"}
    return Draft202012Validator(schema, registry=registry)


def validate_response(instance: Any, method: str, path: str, status: int = 200) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` matches the JSON body schema
    the spec declares for ``method path`` (the spec's path template, e.g.
    ``/session/{sessionID}/diff``) answering ``status``."""
    _response_validator(method, path, status).validate(instance)
