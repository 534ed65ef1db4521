"""Checks on a server's store (an SQLite file or a PostgreSQL URL): the projections against the
log, and a part's stored row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, select
from sqlalchemy.pool import NullPool

from roost.store import deltas
from roost.store.location import parse
from roost.store.projector import rebuild_projections
from roost.store.schema import message, part, request, session, todo

PROJECTIONS = (session, message, part, request, todo)


def _snapshot(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key))]
        for table in PROJECTIONS
    }


def _engine(target: Path | str) -> Engine:
    return create_engine(parse(target).url, poolclass=NullPool)


def rebuilt_and_live(target: Path | str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every projection row as stored, and as ``rebuild_projections`` folds the log again (in a
    transaction that is rolled back, so the store is left as it was): ``(rebuilt, live)``.
    Run it with the server stopped."""
    engine = _engine(target)
    try:
        with engine.connect() as conn, conn.begin() as transaction:
            live = _snapshot(conn)
            rebuild_projections(conn)
            rebuilt = _snapshot(conn)
            transaction.rollback()
    finally:
        engine.dispose()
    return rebuilt, live


def _stored_part(target: Path | str, part_id: str) -> tuple[str, int | None, int | None]:
    """A part's stored ``(data, deltas_from_seq, deltas_to_seq)``; the server may be running."""
    engine = _engine(target)
    try:
        with engine.connect() as conn:
            data, first, last = conn.execute(
                select(part.c.data, part.c.deltas_from_seq, part.c.deltas_to_seq).where(
                    part.c.id == part_id
                )
            ).one()
    finally:
        engine.dispose()
    return data, first, last


def part_row(target: Path | str, part_id: str) -> tuple[str, int | None]:
    """A part's stored ``(data, deltas_from_seq)``; the server may be running."""
    data, first, _ = _stored_part(target, part_id)
    return data, first


def assert_closed_part_stored_once(target: Path | str, closed: dict[str, Any]) -> None:
    """A closed streamed text part (``closed``, as read back, opened empty) is stored once,
    as ``store/deltas.py`` decides: its row holds it whole, or, when its text is at least
    ``FOLD_MIN_CHARS`` long and came within ``FOLD_SPAN`` events, by reference: the part as it
    opened (empty text) and the ``seq`` range of its deltas, which hold the text."""
    data, first, last = _stored_part(target, closed["id"])
    if first is None:
        assert (orjson.loads(data), last) == (closed, None)
        return
    assert last is not None and last - first <= deltas.FOLD_SPAN
    assert len(closed["text"]) >= deltas.FOLD_MIN_CHARS
    assert orjson.loads(data) == {**closed, "text": ""}
