"""Wire event types of OpenCode's v1 ``/event`` stream, defined once.

Source: ``Event*`` schemas in ``opencode-1.18.34-openapi.json``. Every frame is
``{"type": <one of these>, "properties": {...}}``.
"""

from typing import Any, Final

import orjson

SERVER_CONNECTED: Final = "server.connected"
SERVER_HEARTBEAT: Final = "server.heartbeat"
SESSION_CREATED: Final = "session.created"
SESSION_UPDATED: Final = "session.updated"
SESSION_DELETED: Final = "session.deleted"
SESSION_STATUS: Final = "session.status"
SESSION_IDLE: Final = "session.idle"
SESSION_ERROR: Final = "session.error"
SESSION_COMPACTED: Final = "session.compacted"
COMMAND_EXECUTED: Final = "command.executed"
MESSAGE_UPDATED: Final = "message.updated"
MESSAGE_REMOVED: Final = "message.removed"
PART_UPDATED: Final = "message.part.updated"
PART_DELTA: Final = "message.part.delta"
PART_REMOVED: Final = "message.part.removed"
PERMISSION_ASKED: Final = "permission.asked"
PERMISSION_REPLIED: Final = "permission.replied"
QUESTION_ASKED: Final = "question.asked"
QUESTION_REPLIED: Final = "question.replied"
QUESTION_REJECTED: Final = "question.rejected"
TODO_UPDATED: Final = "todo.updated"
MCP_TOOLS_CHANGED: Final = "mcp.tools.changed"
"""OpenCode's: ``{server}``; the server's tools appeared or vanished (it connected or closed)."""
MCP_STATUS: Final = "mcp.status"
"""Roost's: ``{server, status}`` (``MCPStatus``) whenever a server's status changes."""
MCP_AGGREGATE: Final = "mcp"
"""The log's ``session_id`` for MCP events, which belong to no session."""

INTERNAL_PREFIX: Final = "roost."
"""Events of this prefix coordinate the processes that share a store; they are stored and fed
to every process like any event, but never sent to clients (live or replayed)."""
RUN_ABORT: Final = "roost.run.abort"
"""Internal: ``{sessionID, runID, generation, reason}``; asks whichever process runs that
generation of the session's turn to stop it (an abort sent to another process)."""


def is_internal(type_: str) -> bool:
    """Whether an event of ``type_`` is internal (``INTERNAL_PREFIX``)."""
    return type_.startswith(INTERNAL_PREFIX)


PROJECTED_TYPES: Final = frozenset(
    {
        SESSION_CREATED,
        SESSION_UPDATED,
        SESSION_DELETED,
        MESSAGE_UPDATED,
        MESSAGE_REMOVED,
        PART_UPDATED,
        PART_DELTA,
        PART_REMOVED,
        PERMISSION_ASKED,
        PERMISSION_REPLIED,
        QUESTION_ASKED,
        QUESTION_REPLIED,
        QUESTION_REJECTED,
        TODO_UPDATED,
    }
)
"""Types that change the session/message/part projections; the rest are facts only."""


class StoredEvent:
    """A committed event.

    Attributes:
        id: Global position in the log (commit order); the SSE ``id:``.
        session_id: The session the event belongs to.
        seq: Position within the session, from 1.
        type: Wire type, e.g. ``message.part.updated``.
        data: ``properties`` serialized as JSON (what SSE sends and the log stores).
        time_ms: Unix epoch ms when it was appended.
    """

    __slots__ = ("_properties", "data", "id", "seq", "session_id", "time_ms", "type")

    def __init__(
        self,
        id: int,
        session_id: str,
        seq: int,
        type: str,
        properties: dict[str, Any] | None,
        data: bytes,
        time_ms: int,
    ) -> None:
        """``properties`` None: parsed from ``data`` when first asked for (events read back
        from the log, which SSE replays from ``data`` alone)."""
        self.id = id
        self.session_id = session_id
        self.seq = seq
        self.type = type
        self._properties = properties
        self.data = data
        self.time_ms = time_ms

    @property
    def properties(self) -> dict[str, Any]:
        """The wire ``properties`` object."""
        if self._properties is None:
            self._properties = orjson.loads(self.data)
        return self._properties

    def __repr__(self) -> str:
        return (
            f"StoredEvent(id={self.id}, session_id={self.session_id!r}, seq={self.seq}, "
            f"type={self.type!r})"
        )
