from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.store.database import Database


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite store on a fresh file, its writer thread running."""
    database = await Database.open(tmp_path / "store.db")
    try:
        yield database
    finally:
        await database.close()
