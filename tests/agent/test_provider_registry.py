"""``ProviderRegistry``: one client per provider, made on a worker thread at start
(``preload``) or at first use, never twice."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from roost.agent.catalog import ProviderConfig
from roost.agent.providers import registry as registry_module
from roost.agent.providers.openai_compat import OpenAICompatProvider
from roost.agent.providers.registry import ProviderRegistry
from roost.errors import UnknownModel

_LOCAL = ProviderConfig("local", "@ai-sdk/openai-compatible", "http://127.0.0.1:1/v1", "k", None)
_UNKNOWN = ProviderConfig("odd", "@ai-sdk/unknown", "http://127.0.0.1:1/v1", "k", None)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class _Slow(OpenAICompatProvider):
    """Records the thread each client is made on; takes ``delay_s`` to make."""

    made_on: list[int] = []
    started = threading.Event()
    delay_s = 0.0

    def __init__(self, **kwargs: Any) -> None:
        type(self).made_on.append(threading.get_ident())
        type(self).started.set()
        time.sleep(type(self).delay_s)
        super().__init__(**kwargs)


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> type[_Slow]:
    monkeypatch.setattr(registry_module, "OpenAICompatProvider", _Slow)
    _Slow.made_on, _Slow.started, _Slow.delay_s = [], threading.Event(), 0.0
    return _Slow


async def test_preload_makes_the_clients_on_its_thread_and_first_use_gets_them(
    slow: type[_Slow],
) -> None:
    registry = ProviderRegistry()
    try:
        await asyncio.to_thread(registry.preload, [_UNKNOWN, _LOCAL])
        client = registry.get(_LOCAL)
        assert isinstance(client, _Slow) and registry.get(_LOCAL) is client
        assert len(slow.made_on) == 1 and slow.made_on[0] != threading.get_ident()
        # A provider that cannot be made is reported at its use, not by the preload.
        with pytest.raises(UnknownModel):
            registry.get(_UNKNOWN)
    finally:
        await registry.close()


async def test_first_use_while_the_preload_makes_the_client_waits_for_that_client(
    slow: type[_Slow],
) -> None:
    slow.delay_s = 0.3
    registry = ProviderRegistry()
    try:
        preload = asyncio.create_task(asyncio.to_thread(registry.preload, [_LOCAL]))
        assert await asyncio.to_thread(slow.started.wait, 10)
        client = registry.get(_LOCAL)  # the preload is still making it
        await preload
        assert registry.get(_LOCAL) is client
        assert len(slow.made_on) == 1
    finally:
        await registry.close()
