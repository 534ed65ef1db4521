"""The lease heartbeat: renews this process's run leases from its own thread.

It runs outside the asyncio loop on purpose: a loop blocked by a long computation must not let
a healthy run's lease expire. Renewals go through the store's writer thread
(``Database.write_blocking``). A lease found taken over is reported to ``on_lost(session_id,
generation)`` on the loop, which cancels that run without letting it write (its writes would be
fenced anyway). A beat works from a snapshot of the held leases, so the run it renews may have
ended, and the session's next run may hold a newer generation, by the time the renewal commits:
only a generation still held when the result comes back is reported.

When the store refuses renewals (``StorageUnavailable``: disk full, read-only, I/O error), the
heartbeat keeps every lease held and tries again at its usual pace, logging the outage once and
its end once. The turns cannot write either, and they still own their sessions: a turn stopped
by the outage waits to record its outcome and releases its lease only then. Meanwhile the
stored expiry passes; within this process a held lease still makes its session busy and
recovery leaves it alone (``holds``), and the first accepted renewal extends it again
(``leases.renew`` extends an expired lease its owner still holds). Another process sharing the
database sees the lease expired and may recover the run ("lease lost"); from then on this
process's writes for it are fenced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from roost.errors import StorageUnavailable
from roost.store import leases
from roost.store.database import Database

log = logging.getLogger(__name__)


class Heartbeat:
    """Renews held leases every ``ttl_ms / 3``."""

    def __init__(
        self,
        db: Database,
        owner: str,
        ttl_ms: int,
        on_lost: Callable[[str, int], None],
        loop: asyncio.AbstractEventLoop,
        renew_ms: int | None = None,
    ) -> None:
        self._db = db
        self._owner = owner
        self._ttl_ms = ttl_ms
        self._renew_s = (renew_ms if renew_ms is not None else ttl_ms // 3) / 1000
        """Seconds between renewals (a third of the TTL unless configured)."""
        self._on_lost = on_lost
        self._loop = loop
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="roost-heartbeat", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (leases are released by their runs, not here)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def hold(self, session_id: str, generation: int) -> None:
        """Renew this lease from now on."""
        with self._lock:
            self._held[session_id] = generation

    def held(self) -> dict[str, int]:
        """The held leases: generation by session id (a snapshot)."""
        with self._lock:
            return dict(self._held)

    def holds(self, session_id: str, generation: int) -> bool:
        """Whether this generation of the session's lease is held (callable from any thread)."""
        with self._lock:
            return self._held.get(session_id) == generation

    def drop(self, session_id: str, generation: int) -> bool:
        """Stop renewing this lease (a newer generation of the session's lease stays held).

        Returns:
            Whether this generation was still held.
        """
        with self._lock:
            if self._held.get(session_id) != generation:
                return False
            del self._held[session_id]
            return True

    def beat(self) -> None:
        """Renew every held lease once (the thread calls this every ttl/3).

        Raises:
            StorageUnavailable: The store refused the renewals; the leases stay held.
        """
        with self._lock:
            held = list(self._held.items())
        if not held:
            return
        lost = self._db.write_blocking(
            lambda tx: leases.renew(tx.conn, self._owner, held, self._ttl_ms)
        )
        for session_id, generation in lost:
            if not self.drop(session_id, generation):
                continue  # that run has ended meanwhile; a newer one may hold it now
            log.warning("run lease of %s (generation %d) was lost", session_id, generation)
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_lost, session_id, generation)

    def _main(self) -> None:
        refused = False
        while not self._stop.wait(self._renew_s):
            try:
                self.beat()
            except StorageUnavailable as exc:
                if not refused:
                    log.warning(
                        "cannot renew run leases (%s); they stay held, renewals go on", exc.message
                    )
                refused = True
                continue
            except Exception:
                log.exception("lease heartbeat failed; retrying")
                continue
            if refused:
                log.warning("run leases are renewed again")
                refused = False
