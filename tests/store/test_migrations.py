"""The schema comes from numbered migrations, and they match the declared metadata."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from roost.store.database import HEAD_REVISION, migrate, sqlite_url, upgrade
from roost.store.schema import metadata


def _schema(path: Path) -> set[tuple[str, str, str]]:
    engine = create_engine(sqlite_url(path))
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")
        ).all()
    engine.dispose()
    return {tuple(r) for r in rows}


def test_upgrading_an_empty_database_gives_the_declared_schema(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path / "migrated.db"))
    upgrade(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert diffs == []
    assert version == HEAD_REVISION


def test_the_fresh_database_fast_path_matches_the_migrations(tmp_path: Path) -> None:
    migrated, fresh = tmp_path / "migrated.db", tmp_path / "fresh.db"
    upgrade(create_engine(sqlite_url(migrated)))
    migrate(create_engine(sqlite_url(fresh)))
    assert _schema(fresh) == _schema(migrated)


def test_migrate_is_a_no_op_on_an_up_to_date_database(tmp_path: Path) -> None:
    path = tmp_path / "db.db"
    engine = create_engine(sqlite_url(path))
    migrate(engine)
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
