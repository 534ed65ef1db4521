"""Domain errors: typed values with structured fields and no HTTP knowledge.

``roost.api.errors`` is the one place that maps these to HTTP statuses and OpenCode's error
bodies (``NotFoundError``, ``BadRequest``, ``SessionBusyError``).
"""

from __future__ import annotations


class RoostError(Exception):
    """Base of every error Roost raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(RoostError):
    """Something named by the request does not exist."""


class SessionNotFound(NotFound):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session not found: {session_id}")
        self.session_id = session_id


class MessageNotFound(NotFound):
    def __init__(self, session_id: str, message_id: str) -> None:
        super().__init__(f"Message not found: {message_id}")
        self.session_id = session_id
        self.message_id = message_id


class InvalidInput(RoostError):
    """The request is well formed JSON but asks for something impossible.

    Attributes:
        kind: OpenCode's ``BadRequest.data.kind``: ``Payload`` for the body, ``Path`` or
            ``Query`` for parameters.
        field: The offending field, when one is to blame.
    """

    def __init__(self, message: str, *, kind: str = "Payload", field: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


class UnknownAgent(InvalidInput):
    def __init__(self, agent: str, known: list[str]) -> None:
        super().__init__(
            f"Agent not found: {agent!r}. Available agents: {', '.join(known)}", field="agent"
        )
        self.agent = agent


class UnknownModel(InvalidInput):
    def __init__(self, provider_id: str, model_id: str, reason: str) -> None:
        super().__init__(f"Model not found: {provider_id}/{model_id}: {reason}", field="model")
        self.provider_id = provider_id
        self.model_id = model_id


class MalformedBody(InvalidInput):
    """The request body is not JSON that Roost can store and send back.

    Attributes:
        reason: What is wrong: a syntax error, malformed UTF-8, a lone surrogate, ``NaN`` or
            ``Infinity``, or a number outside SQLite's int64 range.
        at: Where: ``byte N`` for a syntax error, else the JSON path (``metadata.a``).
    """

    def __init__(self, reason: str, *, at: str) -> None:
        super().__init__(f"Malformed JSON body at {at}: {reason}")
        self.reason = reason
        self.at = at


class BodyTooLarge(RoostError):
    """The request body is longer than the server accepts (``roost serve --max-body-mb``)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"Request body is larger than the limit of {limit_bytes} bytes "
            f"({limit_bytes / 2**20:g} MiB)"
        )
        self.limit_bytes = limit_bytes


class SessionBusy(RoostError):
    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session is busy: {session_id}")
        self.session_id = session_id


class PartInUse(RoostError):
    """A tool part of a live run cannot be changed; abort the run first."""

    def __init__(self, session_id: str, part_id: str) -> None:
        super().__init__(
            f"Part {part_id} belongs to a turn that is still running in session {session_id}; "
            "abort the session first (POST /session/{sessionID}/abort)"
        )
        self.session_id = session_id
        self.part_id = part_id


class PartNotFound(NotFound):
    def __init__(self, message_id: str, part_id: str) -> None:
        super().__init__(f"Part not found: {part_id}")
        self.message_id = message_id
        self.part_id = part_id


class Conflict(RoostError):
    """A write collided with stored state (a unique key, a stale generation)."""


class StoreClosed(RoostError):
    """The store was closed while a command waited for the writer."""


class ProviderError(RoostError):
    """An LLM provider call failed.

    Attributes:
        status_code: The provider's HTTP status, or None for transport failures.
        retryable: 429, 5xx and transport failures are retried with backoff.
        response_body: The provider's error body, verbatim, when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        response_body: str | None = None,
        response_headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable
        self.response_body = response_body
        self.response_headers = response_headers or {}
        self.url = url
