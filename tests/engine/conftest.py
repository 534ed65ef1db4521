"""A ``SessionService`` on a real store (an SQLite file, a PostgreSQL database) with the
scripted LLM, started and stopped per test (no HTTP server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from roost.agent.catalog import Catalog
from roost.agent.loop import RetryPolicy
from roost.agent.providers.registry import ProviderRegistry
from roost.agent.tools.registry import builtin_tools
from roost.engine.sessions import ServiceOptions, SessionService
from roost.store.database import Database
from tests.support.scripted_llm import ScriptedLLM
from tests.support.server import project_config


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def lease_ttl_ms() -> int:
    """The run lease TTL of the ``service`` fixture (a test module may override it)."""
    return 15_000


@pytest.fixture
async def service(
    tmp_path: Path, llm: ScriptedLLM, lease_ttl_ms: int, store_target: Path | str
) -> AsyncIterator[SessionService]:
    """Once on a fresh SQLite file and once on a fresh PostgreSQL database."""
    db = await Database.open(store_target)
    svc = SessionService(
        db,
        Catalog(project_config(llm.base_url), {}),
        ProviderRegistry(),
        ServiceOptions(
            directory=str(tmp_path),
            project_id="global",
            retry=RetryPolicy(max_attempts=1),
            tools=builtin_tools(tmp_path / "config"),
            output_dir=tmp_path / "out",
            lease_ttl_ms=lease_ttl_ms,
        ),
    )
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()
