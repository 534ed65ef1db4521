"""Domain errors: typed values with structured fields and no HTTP knowledge.

``roost.api.errors`` is the one place that maps these to HTTP statuses and OpenCode's error
bodies (``NotFoundError``, ``BadRequest``, ``SessionBusyError``).
"""

from __future__ import annotations

from typing import Final


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


class CommandNotFound(NotFound):
    """No slash command of that name (``GET /command`` lists them)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Command not found: {name}")
        self.name = name


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


class NotSupported(InvalidInput):
    """A route OpenCode has for a feature Roost does not offer (a clear 400, not a 404)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


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


class InvalidPermissionRule(InvalidInput):
    """A permission rule that Roost cannot evaluate: an unknown action, a missing or non-string
    field, or a value of the wrong shape.

    Attributes:
        where: The rule's place, JSON-path style: ``permission[0].action`` for a ruleset,
            ``permission.bash["rm *"]`` or ``agent.build.permission`` for configuration.
        problem: What is wrong with it.
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"Invalid permission rule at {where}: {problem}", field="permission")
        self.where = where
        self.problem = problem


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


DISK_FULL: Final = "disk_full"
READ_ONLY: Final = "read_only"
IO_ERROR: Final = "io_error"
UNREACHABLE: Final = "unreachable"
_STORAGE_CAUSES: Final = {
    DISK_FULL: "the disk holding the database is full",
    READ_ONLY: "the database is read-only",
    IO_ERROR: "the database could not be written (I/O error)",
    UNREACHABLE: "the database server cannot be reached",
}


class StorageUnavailable(RoostError):
    """The database refused a command because of its storage; nothing of it was stored.

    The store raises it for SQLite's ``SQLITE_FULL``, ``SQLITE_READONLY`` and ``SQLITE_IOERR``
    result codes (https://sqlite.org/rescode.html), and for PostgreSQL's storage and connection
    failures (``store/postgres.py``). The cause lies outside Roost (a full disk, a file system
    remounted read-only, a failing device, a database server restarting) and often passes: the
    same command may succeed later, unchanged.

    Attributes:
        cause: ``DISK_FULL``, ``READ_ONLY``, ``IO_ERROR`` or ``UNREACHABLE``.
        code: SQLite's extended result code name (``SQLITE_IOERR_WRITE``), or PostgreSQL's
            SQLSTATE (``53100``) or the driver's error class.
        path: The database file, or the PostgreSQL URL without its password.
    """

    def __init__(self, cause: str, code: str, path: str) -> None:
        self.description = _STORAGE_CAUSES[cause]
        """What happened, for people: "the disk holding the database is full", …"""
        super().__init__(f"storage unavailable: {self.description} ({code}, {path})")
        self.cause = cause
        self.code = code
        self.path = path


class SnapshotFailed(RoostError):
    """A git command of the snapshot store failed, timed out or was refused by its limits.

    Attributes:
        command: The git subcommand (``add``, ``checkout``, …), or ``limits``.
    """

    def __init__(self, command: str, detail: str) -> None:
        super().__init__(f"snapshot {command} failed: {detail}")
        self.command = command


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


class McpServerNotFound(NotFound):
    """No MCP server of that name is configured (OpenCode's ``McpServerNotFoundError``)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"MCP server not found: {name}")
        self.name = name


class McpOAuthUnsupported(InvalidInput):
    """Roost does not run OAuth flows for remote MCP servers (``McpUnsupportedOAuthError``)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"MCP server {name!r}: OAuth is not supported by Roost; give the server's "
            "credentials in the entry's headers (e.g. Authorization), or set oauth: false",
            field="name",
        )
        self.name = name


class ContextOverflow(RoostError):
    """The conversation does not fit the model's context window, and compaction cannot help.

    Raised inside a run, where it becomes the assistant message's ``ContextOverflowError``.

    Attributes:
        response_body: The provider's refusal, verbatim, when a refusal is the reason.
    """

    def __init__(self, message: str, *, response_body: str | None = None) -> None:
        super().__init__(message)
        self.response_body = response_body


class CompactionFailed(RoostError):
    """``POST /session/{id}/summarize`` ended without a summary (failed, aborted, stopped).

    Attributes:
        reason: The summary message's error name (``ContextOverflowError``,
            ``MessageAbortedError``, ``APIError`` …), or None when it never finished.
    """

    def __init__(self, session_id: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(f"compaction of {session_id} failed: {message}")
        self.session_id = session_id
        self.reason = reason
