"""Wire event types of OpenCode's v1 ``/event`` stream, defined once.

Source: ``Event*`` schemas in ``opencode-1.18.34-openapi.json``. Every frame is
``{"type": <one of these>, "properties": {...}}``.
"""

from typing import Final

SERVER_CONNECTED: Final = "server.connected"
SERVER_HEARTBEAT: Final = "server.heartbeat"
SESSION_CREATED: Final = "session.created"
SESSION_UPDATED: Final = "session.updated"
SESSION_DELETED: Final = "session.deleted"
SESSION_STATUS: Final = "session.status"
SESSION_IDLE: Final = "session.idle"
SESSION_ERROR: Final = "session.error"
MESSAGE_UPDATED: Final = "message.updated"
MESSAGE_REMOVED: Final = "message.removed"
PART_UPDATED: Final = "message.part.updated"
PART_DELTA: Final = "message.part.delta"
PART_REMOVED: Final = "message.part.removed"

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
    }
)
"""Types that change the session/message/part projections; the rest are facts only."""
