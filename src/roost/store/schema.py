"""The declared schema: the event log, its projections, and run bookkeeping.

``event`` is the append-only log. ``session``, ``message`` and ``part`` are projections: rows
folded from the log by ``projector.apply`` in the same transaction as the event, and rebuildable
from it. Each projection row keeps its wire JSON (OpenCode's ``Session``, ``Message`` and ``Part``
schemas) in ``data``, beside the columns that queries filter and sort on.

``request`` (permission and question prompts waiting for the user) and ``todo`` (each session's
todo list) are projections too.

``session_head`` (the per-session ``seq`` counter) and ``run`` (admitted prompts and the turns
that answer them) are command-side state, not projections: the log does not carry them.

Migrations in ``migrations/versions`` must produce exactly this metadata; a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

event = Table(
    "event",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    # Global commit order: the SSE ``id:`` and the ``Last-Event-ID`` cursor. 64-bit on
    # PostgreSQL; SQLite's rowid (``INTEGER PRIMARY KEY``) is 64-bit already.
    Column("session_id", String, nullable=False),
    Column("seq", Integer, nullable=False),
    # Per-session position, assigned by ``event_log`` from ``session_head``; never by callers.
    Column("type", String, nullable=False),
    Column("data", Text, nullable=False),
    # The event's ``properties`` as JSON.
    Column("time_ms", BigInteger, nullable=False),
    UniqueConstraint("session_id", "seq", name="uq_event_session_seq"),
    sqlite_autoincrement=True,
)

session_head = Table(
    "session_head",
    metadata,
    Column("session_id", String, primary_key=True),
    Column("last_seq", Integer, nullable=False),
)

session = Table(
    "session",
    metadata,
    Column("id", String, primary_key=True),
    Column("parent_id", String, nullable=True),
    Column("directory", String, nullable=False),
    Column("title", String, nullable=False),
    Column("time_created", BigInteger, nullable=False),
    Column("time_updated", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_session_parent", "parent_id"),
    Index("ix_session_updated", "time_updated"),
)

message = Table(
    "message",
    metadata,
    Column("id", String, primary_key=True),
    Column("session_id", String, nullable=False),
    Column("role", String, nullable=False),
    Column("time_created", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Index("ix_message_session", "session_id", "id"),
)

part = Table(
    "part",
    metadata,
    Column("id", String, primary_key=True),
    Column("message_id", String, nullable=False),
    Column("session_id", String, nullable=False),
    Column("data", Text, nullable=False),
    Column("deltas_from_seq", Integer, nullable=True),
    # The ``seq`` of the first ``message.part.delta`` since the part's last
    # ``message.part.updated``: its text is ``data`` plus the deltas in the log from there on
    # (``store/deltas.py``). NULL: ``data`` is the whole part.
    Column("deltas_to_seq", Integer, nullable=True),
    # Set for a long streamed part stored by reference: its deltas are those before this
    # ``seq`` (its closing update's). NULL: they run to the end of the log.
    Index("ix_part_message", "message_id", "id"),
    Index("ix_part_session", "session_id"),
)

run = Table(
    "run",
    metadata,
    Column("id", String, primary_key=True),
    Column("session_id", String, nullable=False),
    Column("message_id", String, nullable=False),
    # The user message this run answers.
    Column("status", String, nullable=False),
    # queued → running → completed | failed | aborted | interrupted
    Column("request", Text, nullable=False),
    # JSON: agent, model, system, tools: what the turn needs beyond the stored message.
    Column("assistant_message_id", String, nullable=True),
    Column("time_created", BigInteger, nullable=False),
    Column("time_updated", BigInteger, nullable=False),
    UniqueConstraint("message_id", name="uq_run_message"),
    Index("ix_run_session_status", "session_id", "status"),
    Index("ix_run_status", "status"),
)

request = Table(
    "request",
    metadata,
    Column("id", String, primary_key=True),
    # ``per_…`` or ``que_…``
    Column("kind", String, nullable=False),
    # permission | question
    Column("session_id", String, nullable=False),
    Column("message_id", String, nullable=True),
    Column("call_id", String, nullable=True),
    Column("status", String, nullable=False),
    # pending → replied | rejected
    Column("data", Text, nullable=False),
    # The wire ``PermissionRequest`` / ``QuestionRequest``.
    Column("reply", Text, nullable=True),
    # JSON: ``"once" | "always" | "reject"`` or the answers.
    Index("ix_request_status", "status", "kind"),
    Index("ix_request_session", "session_id"),
)

todo = Table(
    "todo",
    metadata,
    Column("session_id", String, primary_key=True),
    Column("data", Text, nullable=False),
    # JSON array of ``Todo``.
)

run_lease = Table(
    "run_lease",
    metadata,
    Column("session_id", String, primary_key=True),
    # At most one lease per session; busy ⇔ expires_at_ms > now.
    Column("run_id", String, nullable=False),
    Column("owner", String, nullable=False),
    # The server process holding it: host/boot/pid/start.
    Column("generation", Integer, nullable=False),
    # +1 at every acquisition; writes of older generations are refused (fencing).
    Column("expires_at_ms", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    # JSON SessionStatus shown while busy (with Roost's ``reason``).
    Index("ix_run_lease_expires", "expires_at_ms"),
)

run_process = Table(
    "run_process",
    metadata,
    Column("owner", String, primary_key=True),
    Column("pgid", Integer, primary_key=True),
    # A process group a tool call started; recovery kills it if its owner died.
    Column("run_id", String, nullable=False),
    Column("session_id", String, nullable=False),
    Column("call_id", String, nullable=True),
    Column("start_ticks", String, nullable=True),
    # The leader's start time (``/proc/<pgid>/stat``), to tell a recycled pid from ours.
    Column("time_created", BigInteger, nullable=False),
    Index("ix_run_process_run", "run_id"),
)

run_recovery = Table(
    "run_recovery",
    metadata,
    Column("run_id", String, primary_key=True),
    Column("count", Integer, nullable=False),
    # How many times recovery resumed this run; past the limit it fails visibly.
)
