"""The request boundary: how a JSON body is parsed, which values are refused, where it runs.

Every route is a ``BoundaryRoute`` (``APIRouter(route_class=BoundaryRoute)``), so a JSON body
passes here once, before FastAPI validates it against the route's model:

- **Size.** ``api/body_limit.py`` has already refused a body over the limit with a 413.
- **Values.** The body is parsed by orjson (long strings a slice at a time, see
  ``api/sliced_json.py``), which refuses what Roost could neither store nor send
  back: malformed UTF-8, lone surrogates (``"\\ud800"``, RFC 8259 §8.2), ``NaN``/``Infinity``
  and numbers that overflow a double. Every number must then lie in SQLite's int64 range,
  ``-2**63 <= x < 2**63``, whether it is written as an integer or not: JSON does not tell the two
  apart (JavaScript writes ``1e19`` as ``10000000000000000000``), and orjson reads integers of
  2**64 and more as floats. A refused body is a 400 ``BadRequest`` (``MalformedBody``).
- **The event loop.** A body longer than ``OFF_LOOP_BYTES`` is joined from its chunks, parsed,
  checked and validated in worker threads. A C call holds the GIL until it returns, so the
  thread validates a long list field (a prompt's ``parts``) ``_SLICE_ITEMS`` items per call and
  the loop gets the GIL back between slices; the handler then receives the validated model,
  which FastAPI does not validate again (Pydantic keeps model instances as they are). The cyclic
  garbage collector is paused while such a request is in flight (``_CollectorPause``).
"""

from __future__ import annotations

import asyncio
import gc
import typing
from collections.abc import Callable, Coroutine, Iterator
from contextlib import aclosing, contextmanager
from functools import cache
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from roost.api import sliced_json
from roost.errors import MalformedBody

OFF_LOOP_BYTES = 256 * 1024
"""Bodies longer than this are parsed and validated in a worker thread (≈1 ms of parsing)."""

_SLICE_ITEMS = 500
"""List items validated per C call in the worker thread (≈1-2 ms of holding the GIL)."""

INT64_MIN = -(2**63)
INT64_END = 2**63
"""Integers must satisfy ``INT64_MIN <= x < INT64_END``; floats ``-INT64_END < x < INT64_END``,
since orjson reads ``-2**63 - 1`` as the float ``-2.0**63``."""


# -- parsing ------------------------------------------------------------------------------


def parse_json(body: bytes) -> Any:
    """The parsed body, with only values Roost can store and send back (module docstring).

    Raises:
        MalformedBody: A syntax error, malformed UTF-8, a lone surrogate, ``NaN``/``Infinity``
            or a number outside ``INT64_MIN..INT64_END``.
    """
    try:
        value = sliced_json.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(exc.msg, at=f"byte {exc.pos}") from exc
    if not _numbers_in_range(value):
        path, number = _first_out_of_range(value)
        raise MalformedBody(
            f"numbers must lie within -2^63..2^63-1 (SQLite's int64 range), got {number!r}",
            at=path,
        )
    return value


def _numbers_in_range(value: Any) -> bool:
    # Iterative: orjson allows 1024 levels of nesting, more than Python's recursion limit.
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif (kind is int and not INT64_MIN <= item < INT64_END) or (
            kind is float and not -INT64_END < item < INT64_END
        ):
            return False
    return True


def _first_out_of_range(value: Any) -> tuple[str, int | float]:
    """The JSON path and value of the first refused number (only called when there is one)."""
    stack: list[tuple[str, Any]] = [("$", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            stack.extend((f"{path}.{key}", v) for key, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))
        elif type(item) in (int, float) and not _numbers_in_range(item):
            return path.removeprefix("$.") if path != "$" else "$", item
    raise AssertionError("no number out of range")


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this ``Content-Type`` as JSON (``application/json``
    or ``application/*+json``); it passes any other body to validation as bytes."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


# -- validating off the event loop --------------------------------------------------------


@cache
def _list_fields(model: type[BaseModel]) -> dict[str, tuple[str, TypeAdapter[Any]]]:
    """``alias -> (field name, adapter)`` for each list field of ``model``."""
    out: dict[str, tuple[str, TypeAdapter[Any]]] = {}
    for name, info in model.model_fields.items():
        origin = getattr(info.annotation, "__origin__", None)
        if origin is list:
            # Any: a type form built at run time (the field's type with its constraints).
            annotated: Any = (
                Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
            )
            out[info.alias or name] = (name, TypeAdapter(annotated))
    return out


def _validate_sliced(model: type[BaseModel], value: dict[str, Any]) -> BaseModel:
    """``model.model_validate(value)``, with each long list validated in slices.

    The rest of the body is validated with the first slice of each long list, then the
    remaining slices are appended (constraints on a list's length are therefore checked on its
    first slice only; no wire model has any).

    Raises:
        RequestValidationError: As FastAPI would raise it, locations starting with ``body``.
    """
    long_lists = {
        alias: (name, adapter)
        for alias, (name, adapter) in _list_fields(model).items()
        if isinstance(value.get(alias), list) and len(value[alias]) > _SLICE_ITEMS
    }
    head = {**value, **{alias: value[alias][:_SLICE_ITEMS] for alias in long_lists}}
    problems: list[Any] = []
    try:
        validated = model.model_validate(head)
    except ValidationError as exc:
        problems.extend(exc.errors(include_url=False))
        validated = None
    updates: dict[str, list[Any]] = {}
    for alias, (name, adapter) in long_lists.items():
        items = list(getattr(validated, name)) if validated is not None else []
        whole = value[alias]
        for start in range(_SLICE_ITEMS, len(whole), _SLICE_ITEMS):
            try:
                items.extend(adapter.validate_python(whole[start : start + _SLICE_ITEMS]))
            except ValidationError as exc:
                for err in exc.errors(include_url=False):
                    loc = err.get("loc", ())
                    problems.append({**err, "loc": (alias, start + int(loc[0]), *loc[1:])})
        updates[name] = items
    if problems:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err.get("loc", ()))} for err in problems[:20]]
        )
    assert validated is not None
    return validated.model_copy(update=updates)


def _body_model(route: APIRoute) -> type[BaseModel] | None:
    """The route's body model: ``Model`` or ``Model | None``; None for other bodies (a dict)."""
    if route.body_field is None:
        return None
    annotation = route.body_field.field_info.annotation
    candidates = typing.get_args(annotation) if typing.get_origin(annotation) else (annotation,)
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return models[0] if len(models) == 1 else None


def _decode_off_loop(model: type[BaseModel] | None, body: bytes) -> Any:
    """The decoded body, or the refusal to raise on the event loop.

    A refusal is returned, not raised, and without its traceback: the frames of this thread
    hold the whole parsed body, which would otherwise live (and be walked by the collector)
    until the error response is sent.
    """
    try:
        value = parse_json(body)
        if model is not None and isinstance(value, dict):
            return _validate_sliced(model, value)
        return value
    except (MalformedBody, RequestValidationError) as exc:
        return _Refused(exc.with_traceback(None))


def _dismantle(decoded: Any) -> None:
    """Empty the long lists of a decoded body (the handler is done with it), ``_SLICE_ITEMS``
    items per C call: freeing 100k part models at once holds the GIL for 40-100 ms."""
    fields = decoded.__dict__.values() if isinstance(decoded, BaseModel) else [decoded]
    for value in fields:
        if isinstance(value, list):
            while value:
                del value[-_SLICE_ITEMS:]


async def let_go(items: list[Any]) -> None:
    """Empty ``items``, a list the caller is done with, in a worker thread when it is long
    (as ``_dismantle`` does for decoded bodies), so its items are not freed on the loop."""
    if len(items) > _SLICE_ITEMS:
        await anyio.to_thread.run_sync(_dismantle, items)


class _Refused:
    """A body refused in the worker thread."""

    def __init__(self, error: MalformedBody | RequestValidationError) -> None:
        self.error = error


_MAX_PAUSE_S = 10.0
"""Longest the collector stays paused for one request (a synchronous prompt waits for its turn)."""


class _CollectorPause:
    """Pauses the cyclic garbage collector while requests with a large body are in flight.

    A 100k-part prompt keeps about a million objects alive at once. Each full collection while
    they live walks all of them, holding the GIL for 50-100 ms, a few times per request; with
    the collector paused they are freed by reference counting when the request ends, and the
    next collection walks a small heap again. A request holds the pause until it ends or for
    ``_MAX_PAUSE_S``, whichever comes first. Only used on the event loop.

    Objects allocated during the pause stay in the youngest generation, however many, and some
    are still alive when it ends (a committed batch the store's reaper is still freeing): the
    first young collection after it walked them all on the loop, 35-80 ms after a 100k-part
    prompt. So the pause ends by moving every tracked object to the oldest generation,
    ``gc.freeze()`` then ``gc.unfreeze()`` (two list splices, no walk); what is still garbage
    then waits for the next full collection. That also unfreezes what ``roost serve`` froze at
    start (``cli/serve.py``), so the first full collection after such a request walks the
    start-up objects once more.
    """

    def __init__(self, max_pause_s: float = _MAX_PAUSE_S) -> None:
        self._holders = 0
        self._max_pause_s = max_pause_s

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep the collector paused inside the block (at most ``max_pause_s``)."""
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._holders -= 1
                if self._holders == 0:
                    gc.freeze()
                    gc.unfreeze()
                    gc.enable()

        self._holders += 1
        if self._holders == 1:
            gc.disable()
        timer = asyncio.get_running_loop().call_later(self._max_pause_s, release)
        try:
            yield
        finally:
            timer.cancel()
            release()


_collector = _CollectorPause()


async def _read_body(request: Request) -> bytes:
    """The whole body. The chunks of one longer than ``OFF_LOOP_BYTES`` are joined in a worker
    thread: joining 30 MiB on the loop is 30-50 ms, mostly page faults of the new buffer."""
    chunks: list[bytes] = []
    size = 0
    async with aclosing(request.stream()) as stream:
        async for chunk in stream:
            chunks.append(chunk)
            size += len(chunk)
    if size > OFF_LOOP_BYTES:
        return await anyio.to_thread.run_sync(b"".join, chunks)
    return b"".join(chunks)


class _ReadRequest(Request):
    """A request whose body has been read here: FastAPI's handler gets it from ``body()``."""

    def __init__(self, request: Request, body: bytes) -> None:
        super().__init__(request.scope, request.receive)
        self._read_body = body

    async def body(self) -> bytes:
        """The body as read by the boundary."""
        return self._read_body


class _DecodedRequest(_ReadRequest):
    """A request whose body has been read and decoded here: FastAPI's handler gets the result
    from ``body()`` and ``json()`` instead of parsing again."""

    def __init__(self, request: Request, body: bytes, decoded: Any) -> None:
        super().__init__(request, body)
        self._decoded = decoded

    async def json(self) -> Any:
        """The parsed (and, for large bodies, validated) body."""
        return self._decoded


class BoundaryRoute(APIRoute):
    """An ``APIRoute`` whose JSON body is parsed and checked here (module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler behind the boundary's body decoding."""
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        model = _body_model(self)

        async def decode_then_handle(request: Request) -> Response:
            # Read here, whatever the type: FastAPI would turn ``BodyTooLarge`` into a 400.
            body = await _read_body(request)
            if not body or not is_json(request.headers.get("content-type")):
                return await handler(_ReadRequest(request, body))
            if len(body) <= OFF_LOOP_BYTES:
                return await handler(_DecodedRequest(request, body, parse_json(body)))
            with _collector.held():
                # The decoded body lives only in this call's frame, so it is freed before the
                # collector runs again.
                return await decode_off_loop_then_handle(request, body)

        async def decode_off_loop_then_handle(request: Request, body: bytes) -> Response:
            decoded = await anyio.to_thread.run_sync(_decode_off_loop, model, body)
            if isinstance(decoded, _Refused):
                raise decoded.error
            response = await handler(_DecodedRequest(request, body, decoded))
            await anyio.to_thread.run_sync(_dismantle, decoded)
            return response

        return decode_then_handle
