from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.store.database import Database


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def db(store_target: Path | str) -> AsyncIterator[Database]:
    """A migrated store, once on a fresh SQLite file and once on a fresh PostgreSQL database,
    its writer thread running."""
    database = await Database.open(store_target)
    try:
        yield database
    finally:
        await database.close()
