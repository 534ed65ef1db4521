"""Provider instances by provider id, created on first use and closed together."""

from __future__ import annotations

from roost.agent.catalog import ANTHROPIC_NPM, OPENAI_COMPATIBLE_NPM, ProviderConfig
from roost.agent.providers.anthropic import AnthropicProvider
from roost.agent.providers.base import Provider
from roost.agent.providers.openai_compat import OpenAICompatProvider
from roost.errors import UnknownModel


class ProviderRegistry:
    """Owns one client per configured provider (so HTTP connections are reused)."""

    def __init__(self) -> None:
        self._clients: dict[str, OpenAICompatProvider | AnthropicProvider] = {}

    def get(self, config: ProviderConfig) -> Provider:
        """The client for ``config``.

        Raises:
            UnknownModel: The provider's ``npm`` package names an SDK Roost does not speak.
        """
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

    async def close(self) -> None:
        """Close every client's connection pool."""
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
