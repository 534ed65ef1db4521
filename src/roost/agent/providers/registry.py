"""Provider instances by provider id, created on first use and closed together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from roost.agent.catalog import ANTHROPIC_NPM, OPENAI_COMPATIBLE_NPM, ProviderConfig
from roost.agent.providers.anthropic import AnthropicProvider
from roost.agent.providers.base import Provider
from roost.agent.providers.openai_compat import OpenAICompatProvider
from roost.errors import UnknownModel

log = logging.getLogger(__name__)


class ProviderRegistry:
    """Owns one client per configured provider (so HTTP connections are reused)."""

    def __init__(self) -> None:
        self._clients: dict[str, OpenAICompatProvider | AnthropicProvider] = {}
        self._lock = threading.Lock()
        """Held while a client is looked up or made (``preload`` makes them on a thread)."""

    def get(self, config: ProviderConfig) -> Provider:
        """The client for ``config``.

        Raises:
            UnknownModel: The provider's ``npm`` package names an SDK Roost does not speak.
        """
        with self._lock:
            client = self._clients.get(config.id)
            if client is None:
                if config.npm == ANTHROPIC_NPM:
                    client = AnthropicProvider(base_url=config.base_url, api_key=config.api_key)
                elif config.npm and config.npm not in OPENAI_COMPATIBLE_NPM:
                    raise UnknownModel(config.id, "", f"unsupported provider package {config.npm}")
                else:
                    client = OpenAICompatProvider(base_url=config.base_url, api_key=config.api_key)
                self._clients[config.id] = client
            return client

    def preload(self, configs: Iterable[ProviderConfig]) -> None:
        """Make the clients of ``configs`` now, blocking: run it on a worker thread at start.

        The first client of an SDK imports it and its HTTP stack (0.3-0.5 s on a 2-core VM);
        made on the event loop by a server's first prompt, it held every other request that
        long. A client that cannot be made is left for its first use to report.
        """
        for config in configs:
            try:
                self.get(config)
            except Exception as exc:  # reported where it matters: at the client's first use
                log.debug("provider %s not preloaded: %s", config.id, exc)

    async def close(self) -> None:
        """Close every client's connection pool."""
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
