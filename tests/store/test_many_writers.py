"""Several processes writing one store at once (replicas on one PostgreSQL database or one
SQLite file): ``seq`` stays gapless per session, rebuilding the projections equals the live
ones, the lease state machine never has two holders, and every process's event feed publishes
the whole log once, in id order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from roost.store.invariants import seq_gaps
from roost.store.location import parse
from roost.store.projector import rebuild_projections
from tests.support.store_writer import EVENTS_PER_TURN, LEASED, SESSIONS

_WRITERS = 3
_ROUNDS = 12


def _snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
        for table in ("session", "message", "part")
    }


def test_concurrent_writer_processes_keep_every_store_invariant(
    store_target: Path | str, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[2]
    outs = [tmp_path / f"w{n}.json" for n in range(_WRITERS)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.store_writer",
                str(store_target),
                f"w{n}",
                str(_ROUNDS),
                str(_WRITERS),
                str(out),
            ],
            cwd=root,
        )
        for n, out in enumerate(outs)
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    reports = [json.loads(out.read_text()) for out in outs]

    engine = create_engine(parse(store_target).url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            assert seq_gaps(conn) == []
            counted = conn.execute(text("SELECT session_id, count(*) FROM event GROUP BY 1"))
            per_session = {str(sid): int(n) for sid, n in counted}
            ids = [r[0] for r in conn.execute(text("SELECT id FROM event ORDER BY id"))]
            live = _snapshot(conn)
            rebuild_projections(conn)
            assert _snapshot(conn) == live
            conn.rollback()
    finally:
        engine.dispose()

    for sid in SESSIONS:
        assert per_session[sid] == _WRITERS * _ROUNDS * EVENTS_PER_TURN
    # Every lease acquisition got its own generation; the refused ones met a live holder.
    generations = [g for r in reports for g in r["generations"]]
    assert len(generations) == len(set(generations))
    assert len(generations) + sum(r["refused"] for r in reports) == _WRITERS * _ROUNDS
    assert LEASED not in per_session  # leases are not events
    # Each feed published what was committed after it opened: ascending, no repeats, no gaps.
    for report in reports:
        published = report["published"]
        assert published == sorted(set(published))
        assert published == [i for i in ids if published[0] <= i <= published[-1]]
        assert published[-1] == ids[-1]


pytestmark = pytest.mark.timeout(180)
