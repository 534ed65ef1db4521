"""Run leases: the durable, expiring claim that makes a session busy.

A session is busy exactly while it holds an unexpired lease (``run_lease`` row with
``expires_at_ms > now``). A lease names its run, its owner (one server process:
``host/boot/pid/start``) and a generation that grows by one at every acquisition, takeover
included. Every write made for a run checks that its generation still holds the session's lease
(``check``), inside the same transaction: a run that lost its lease (it expired and another
owner took it over) cannot write over the run that took over (fencing). The owner renews its
leases from a heartbeat thread; a lease whose owner stopped renewing expires and is recovered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, select, update

from roost.errors import Conflict
from roost.store.event_log import store_now_ms
from roost.store.prepared import Prepared, Upsert
from roost.store.schema import run_lease


class LeaseLost(Conflict):
    """The run's lease is gone or has a newer generation; it must stop writing."""

    def __init__(self, session_id: str, generation: int) -> None:
        super().__init__(f"run lease of {session_id} (generation {generation}) was lost")
        self.session_id = session_id
        self.generation = generation


class LeaseHeld(Conflict):
    """Another live run holds the session's lease."""

    def __init__(self, session_id: str, run_id: str) -> None:
        super().__init__(f"session {session_id} is busy with run {run_id}")
        self.session_id = session_id
        self.run_id = run_id


@dataclass(frozen=True, slots=True)
class Lease:
    """One lease row.

    Attributes:
        expires_at_ms: Unix epoch ms; the holder renews every ttl/3.
        status: The busy status the session shows (``SessionStatus`` plus Roost's ``reason``).
    """

    session_id: str
    run_id: str
    owner: str
    generation: int
    expires_at_ms: int
    status: dict[str, Any]

    def is_live(self, at_ms: int) -> bool:
        """Whether the lease is unexpired at ``at_ms``."""
        return self.expires_at_ms > at_ms


def _lease(r: Any) -> Lease:
    """A row of ``select(*_COLUMNS)`` (a driver tuple or a Core row) as a ``Lease``."""
    return Lease(r[0], r[1], r[2], r[3], r[4], orjson.loads(r[5]))


RELEASED = 0
"""``expires_at_ms`` of a released lease: the row keeps the session's last generation."""
_RUNNING = orjson.dumps({"type": "busy", "reason": "running"}).decode()
_COLUMNS = (
    run_lease.c.session_id,
    run_lease.c.run_id,
    run_lease.c.owner,
    run_lease.c.generation,
    run_lease.c.expires_at_ms,
    run_lease.c.status,
)
_GET = Prepared(select(*_COLUMNS).where(run_lease.c.session_id == bindparam("sid")))
_CHECK = Prepared(
    select(run_lease.c.generation, run_lease.c.expires_at_ms).where(
        run_lease.c.session_id == bindparam("sid")
    )
)
_FENCED = (run_lease.c.session_id == bindparam("sid")) & (
    run_lease.c.generation == bindparam("generation")
)
_SET_STATUS = Prepared(update(run_lease).where(_FENCED).values(status=bindparam("status")))
_RELEASE = Prepared(update(run_lease).where(_FENCED).values(expires_at_ms=RELEASED))
_RENEW = Prepared(
    update(run_lease)
    .where(
        _FENCED,
        run_lease.c.owner == bindparam("owner"),
        run_lease.c.expires_at_ms > RELEASED,
    )
    .values(expires_at_ms=bindparam("expires"))
)
_UPSERT = Upsert(run_lease, run_lease.c.session_id)


def get(conn: Connection, session_id: str) -> Lease | None:
    """The session's lease row (live or expired), or None."""
    r = _GET.execute(conn, {"sid": session_id}).fetchone()
    return _lease(r) if r is not None else None


def acquire(
    conn: Connection,
    session_id: str,
    run_id: str,
    owner: str,
    ttl_ms: int,
    *,
    takeover: bool = False,
) -> Lease:
    """Take the session's lease for ``run_id`` with the next generation.

    Args:
        takeover: Take it even from a live holder (recovery of a provably dead owner).

    Raises:
        LeaseHeld: A live lease of another run exists (and ``takeover`` is false).
    """
    at = store_now_ms(conn)
    current = get(conn, session_id)
    if current is not None and current.is_live(at) and not takeover and current.run_id != run_id:
        raise LeaseHeld(session_id, current.run_id)
    generation = (current.generation if current is not None else 0) + 1
    row = {
        "session_id": session_id,
        "run_id": run_id,
        "owner": owner,
        "generation": generation,
        "expires_at_ms": at + ttl_ms,
        "status": _RUNNING,
    }
    _UPSERT.execute(conn, row)
    return Lease(session_id, run_id, owner, generation, at + ttl_ms, orjson.loads(_RUNNING))


def check(conn: Connection, session_id: str, generation: int) -> None:
    """Fence a write: the session's lease must still carry ``generation``.

    Raises:
        LeaseLost: It does not (released, or taken over by a newer generation).
    """
    found = _CHECK.execute(conn, {"sid": session_id}).fetchone()
    if found is None or found[0] != generation or found[1] == RELEASED:
        raise LeaseLost(session_id, generation)


def set_status(conn: Connection, session_id: str, generation: int, status: dict[str, Any]) -> None:
    """Record the busy status shown for the session (fenced by generation)."""
    _SET_STATUS.execute(
        conn,
        {"sid": session_id, "generation": generation, "status": orjson.dumps(status).decode()},
    )


def release(conn: Connection, session_id: str, generation: int) -> None:
    """Give the lease up (only if it still carries ``generation``).

    The row stays, marked released (``expires_at_ms = 0``), so the next acquisition still gets
    a higher generation and a straggling writer of this one stays fenced out.
    """
    _RELEASE.execute(conn, {"sid": session_id, "generation": generation})


def renew(
    conn: Connection, owner: str, held: list[tuple[str, int]], ttl_ms: int
) -> list[tuple[str, int]]:
    """Extend the owner's leases by ``ttl_ms`` from now.

    Args:
        held: ``(session_id, generation)`` pairs, as the heartbeat last saw them.

    Returns:
        The pairs whose session lease now carries another generation or owner (taken over,
        or already re-taken after the run ended). A lease its own run released is not
        reported: that run has ended, and nobody took anything from it.
    """
    expires = store_now_ms(conn) + ttl_ms
    lost = []
    for session_id, generation in held:
        params = {"sid": session_id, "generation": generation, "owner": owner, "expires": expires}
        result = _RENEW.execute(conn, params)
        if result.rowcount == 0:
            current = get(conn, session_id)
            if current is None or current.generation != generation or current.owner != owner:
                lost.append((session_id, generation))
    return lost


def live(conn: Connection, at_ms: int | None = None) -> list[Lease]:
    """Unexpired leases (a range of ``ix_run_lease_expires``)."""
    at = store_now_ms(conn) if at_ms is None else at_ms
    rows = conn.execute(select(*_COLUMNS).where(run_lease.c.expires_at_ms > at))
    return [_lease(r) for r in rows]


def expired(conn: Connection, at_ms: int | None = None) -> list[Lease]:
    """Expired, not released leases, oldest expiry first (a range of
    ``ix_run_lease_expires``)."""
    at = store_now_ms(conn) if at_ms is None else at_ms
    rows = conn.execute(
        select(*_COLUMNS)
        .where(run_lease.c.expires_at_ms > RELEASED, run_lease.c.expires_at_ms <= at)
        .order_by(run_lease.c.expires_at_ms)
    )
    return [_lease(r) for r in rows]
