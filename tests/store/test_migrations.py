"""The schema comes from numbered migrations, they match the declared metadata on both
databases, and replicas that start together migrate once."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from roost.model import event as ev
from roost.store.database import HEAD_REVISION, Database, migrate, upgrade
from roost.store.location import parse
from roost.store.schema import metadata
from roost.store.sqlite import PAGE_SIZE_BYTES
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.anyio


def _engine(target: Path | str) -> Engine:
    return create_engine(parse(target).url, poolclass=NullPool)


def _schema(engine: Engine) -> dict[str, Any]:
    """Tables with their columns (name, type, nullable), indexes and unique constraints."""
    with engine.connect() as conn:
        found = inspect(conn)
        return {
            table: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
                sorted((i["name"], tuple(i["column_names"])) for i in found.get_indexes(table)),
                sorted(
                    (u["name"], tuple(u["column_names"]))
                    for u in found.get_unique_constraints(table)
                ),
                found.get_pk_constraint(table)["constrained_columns"],
            )
            for table in sorted(found.get_table_names())
        }


def test_upgrading_an_empty_database_gives_the_declared_schema(store_target: Path | str) -> None:
    engine = _engine(store_target)
    upgrade(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert diffs == []
    assert version == HEAD_REVISION


def test_the_fresh_database_fast_path_matches_the_migrations(
    store_target: Path | str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if isinstance(store_target, Path):
        other: Path | str = tmp_path / "fresh.db"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
        other = cluster.create_database()
    migrated, fresh = _engine(store_target), _engine(other)
    upgrade(migrated)
    migrate(fresh)
    assert _schema(fresh) == _schema(migrated)
    migrated.dispose()
    fresh.dispose()


def test_migrate_is_a_no_op_on_an_up_to_date_database(store_target: Path | str) -> None:
    engine = _engine(store_target)
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


async def test_replicas_opening_one_new_store_together_migrate_it_once(
    store_target: Path | str,
) -> None:
    """Four stores opened at the same moment on one empty database: each takes the migration
    lock in turn, the first creates the schema and the others find it at the head."""
    opened = await asyncio.gather(*(Database.open(store_target) for _ in range(4)))
    try:
        engine = _engine(store_target)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (HEAD_REVISION,)
            ]
            assert conn.execute(text("SELECT count(*) FROM event")).scalar() == 0
        engine.dispose()
    finally:
        for db in opened:
            await db.close()


async def test_a_new_sqlite_file_gets_small_pages_and_an_existing_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    """New files get ``PAGE_SIZE_BYTES`` pages (fewer bytes written per commit, issue #13); a
    file created with SQLite's default 4 KiB pages opens and takes writes as it is."""
    old = tmp_path / "old.db"
    engine = _engine(old)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA page_size=4096")
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    upgrade(engine)
    engine.dispose()
    for path, expected in ((tmp_path / "new.db", PAGE_SIZE_BYTES), (old, 4096)):
        db = await Database.open(path)
        try:
            await db.write(lambda tx: tx.append("ses_1", ev.SESSION_DELETED, {"sessionID": "x"}))
        finally:
            await db.close()
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA page_size").fetchone() == (expected,)
            assert conn.execute("SELECT count(*) FROM event").fetchone() == (1,)
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
                HEAD_REVISION,
            )
