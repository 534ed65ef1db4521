"""Session titles generated from the conversation, in the background (OpenCode's title agent).

After the first prompt of a root session whose title is still OpenCode's placeholder
(``New session - <ISO time>``), one model request asks for a short title: with the config's
``agent.title.model``, else ``small_model``, else the prompt's model. When it answers, the title
is stored (``session.updated``) unless someone renamed the session meanwhile. ``agent.title``
with ``disable: true`` turns titles off.

A title is a convenience: it never delays the prompt's admission or its turn, and a failure
(provider error, timeout, empty answer) is logged and leaves the placeholder. Titles that were
not generated before a restart are not retried.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import orjson

from roost.agent.catalog import Catalog, ResolvedModel
from roost.agent.providers.base import ModelRequest, StreamEnd, TextDelta
from roost.agent.providers.registry import ProviderRegistry
from roost.model import event as ev
from roost.store import queries
from roost.store.database import Database
from roost.store.event_log import Tx, now_ms

log = logging.getLogger(__name__)

TITLE_TIMEOUT_S = 30.0
MAX_TITLE_CHARS = 100
_PLACEHOLDER = re.compile(r"^(New session|Child session) - \d{4}-\d\d-\d\dT[\d:.]+Z$")
_INSTRUCTIONS = (
    "You name conversations. Write a title for the conversation that begins with the user's "
    "message below: at most 50 characters, in the user's language, saying what the user wants "
    "done. Answer with the title alone: no quotes, no trailing period, no explanation."
)


def is_placeholder(title: str) -> bool:
    """Whether ``title`` is OpenCode's default title (``model/session.default_title``)."""
    return bool(_PLACEHOLDER.match(title))


def clean_title(text: str) -> str:
    """The model's answer as a title: its first non-empty line, without quotes or markup,
    cut to ``MAX_TITLE_CHARS``; empty when nothing usable is left."""
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = line.strip("\"'`*# ").removeprefix("Title:").strip().strip("\"'`")
    return line[:MAX_TITLE_CHARS].rstrip()


class TitleWriter:
    """Owns the background title requests (every task is awaited by ``stop``)."""

    def __init__(self, db: Database, catalog: Catalog, providers: ProviderRegistry) -> None:
        self._db = db
        self._catalog = catalog
        self._providers = providers
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def _model(self, prompt_model: ResolvedModel) -> ResolvedModel | None:
        entry = (self._catalog.config.get("agent") or {}).get("title") or {}
        if entry.get("disable"):
            return None
        for value in (entry.get("model"), self._catalog.config.get("small_model")):
            if isinstance(value, str) and "/" in value:
                provider_id, model_id = value.split("/", 1)
                try:
                    agent = self._catalog.agent(None)
                    return self._catalog.resolve_model(provider_id, model_id, agent)
                except Exception as exc:  # a misconfigured small model: use the prompt's
                    log.warning("title model %s unusable: %s", value, exc)
        return prompt_model

    def schedule(
        self, session_id: str, session_info: dict[str, Any], text: str, prompt_model: ResolvedModel
    ) -> None:
        """Start generating a title for a root session still carrying the placeholder."""
        if (
            session_id in self._tasks
            or session_info.get("parentID")
            or not is_placeholder(str(session_info.get("title", "")))
            or not text.strip()
        ):
            return
        model = self._model(prompt_model)
        if model is None:
            return
        task = asyncio.create_task(
            self._generate(session_id, text, model), name=f"title:{session_id}"
        )
        self._tasks[session_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(session_id, None))

    async def _generate(self, session_id: str, text: str, model: ResolvedModel) -> None:
        request = ModelRequest(
            model_id=model.model_id,
            messages=[
                {"role": "system", "content": _INSTRUCTIONS},
                {"role": "user", "content": text[:4000]},
            ],
        )
        answer = ""
        try:
            provider = self._providers.get(model.provider)
            async with asyncio.timeout(TITLE_TIMEOUT_S):
                async for event in provider.stream(request):
                    if isinstance(event, TextDelta):
                        answer += event.text
                    elif isinstance(event, StreamEnd):
                        break
        except Exception as exc:  # any failure leaves the placeholder: titles are optional
            log.warning("no title for %s: %s", session_id, exc)
            return
        title = clean_title(answer)
        if not title:
            log.warning("no title for %s: the model answered nothing usable", session_id)
            return

        def store(tx: Tx) -> None:
            stored = queries.get_session(tx.conn, session_id)
            if stored is None:
                return  # deleted meanwhile
            info = orjson.loads(stored)
            if not is_placeholder(str(info.get("title", ""))):
                return  # renamed meanwhile: the user's title wins
            info["title"] = title
            info.setdefault("time", {})["updated"] = now_ms()
            tx.append(session_id, ev.SESSION_UPDATED, {"sessionID": session_id, "info": info})

        try:
            await self._db.write(store)
        except Exception as exc:  # the store refused (full disk, closing): keep the placeholder
            log.warning("title for %s not stored: %s", session_id, exc)

    async def stop(self) -> None:
        """Cancel the requests still running and wait for them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
