"""Request bodies, validated at the edge (schemas from ``opencode-1.18.34-openapi.json``).

Unknown fields are ignored rather than refused, so newer clients keep working; fields that are
present must have the right type and id prefix (a violation is a 400 ``BadRequest``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from roost.model.permission import Rule

INT64_MAX = 2**63 - 1
"""The largest integer SQLite stores; numbers in bodies are bounded by ``api/boundary.py``."""

CountQuery = Annotated[int | None, Query(ge=0, le=INT64_MAX)]
"""A ``limit`` query parameter: a count, at most ``INT64_MAX``."""

EpochMsQuery = Annotated[float | None, Query(allow_inf_nan=False, ge=-INT64_MAX - 1, lt=2**63)]
"""A time query parameter (``start``), Unix epoch ms: finite and inside SQLite's int64 range."""

SessionIDPattern = r"^ses"
MessageIDPattern = r"^msg"
PartIDPattern = r"^prt"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SessionModelRef(_Wire):
    """``Session.model`` in ``POST /session``."""

    id: str
    provider_id: str = Field(alias="providerID")
    variant: str | None = None


class SessionCreateBody(_Wire):
    """``POST /session`` body."""

    parent_id: str | None = Field(default=None, alias="parentID", pattern=SessionIDPattern)
    title: str | None = None
    agent: str | None = None
    model: SessionModelRef | None = None
    metadata: dict[str, Any] | None = None
    permission: list[Rule] | None = None
    """OpenAPI ``PermissionRuleset``: an unknown action or a missing field is a 400."""


class SessionTimePatch(_Wire):
    """``time`` in ``PATCH /session/{id}``."""

    archived: float | None = None


class SessionUpdateBody(_Wire):
    """``PATCH /session/{id}`` body."""

    title: str | None = None
    metadata: dict[str, Any] | None = None
    permission: list[Rule] | None = None
    """As in ``SessionCreateBody``."""
    time: SessionTimePatch | None = None


class PartTime(_Wire):
    """``time`` of a text part: Unix epoch ms."""

    start: int = Field(ge=0)
    end: int | None = Field(default=None, ge=0)


class TextPartInput(_Wire):
    """OpenAPI ``TextPartInput``."""

    id: str | None = Field(default=None, pattern=PartIDPattern)
    type: Literal["text"]
    text: str
    synthetic: bool | None = None
    ignored: bool | None = None
    time: PartTime | None = None
    metadata: dict[str, Any] | None = None


class FilePartInput(_Wire):
    """OpenAPI ``FilePartInput``."""

    id: str | None = Field(default=None, pattern=PartIDPattern)
    type: Literal["file"]
    mime: str
    filename: str | None = None
    url: str
    source: dict[str, Any] | None = None


class AgentPartInput(_Wire):
    """OpenAPI ``AgentPartInput``."""

    id: str | None = Field(default=None, pattern=PartIDPattern)
    type: Literal["agent"]
    name: str
    source: dict[str, Any] | None = None


class PromptModelRef(_Wire):
    """``model`` in a prompt body."""

    provider_id: str = Field(alias="providerID")
    model_id: str = Field(alias="modelID")


class SubtaskPartInput(_Wire):
    """OpenAPI ``SubtaskPartInput``."""

    id: str | None = Field(default=None, pattern=PartIDPattern)
    type: Literal["subtask"]
    prompt: str
    description: str
    agent: str
    model: PromptModelRef | None = None
    command: str | None = None


PartInput = Annotated[
    TextPartInput | FilePartInput | AgentPartInput | SubtaskPartInput,
    Field(discriminator="type"),
]


class PromptBody(_Wire):
    """``POST /session/{id}/message`` and ``/prompt_async`` body."""

    message_id: str | None = Field(default=None, alias="messageID", pattern=MessageIDPattern)
    model: PromptModelRef | None = None
    agent: str | None = None
    no_reply: bool = Field(default=False, alias="noReply")
    tools: dict[str, bool] | None = None
    format: dict[str, Any] | None = None
    system: str | None = None
    variant: str | None = None
    parts: list[PartInput]


class ShellBody(_Wire):
    """``POST /session/{id}/shell`` body (a user's ``!cmd``)."""

    message_id: str | None = Field(default=None, alias="messageID", pattern=MessageIDPattern)
    agent: str
    model: PromptModelRef | None = None
    command: str = Field(min_length=1)


class CommandBody(_Wire):
    """``POST /session/{id}/command`` body."""

    message_id: str | None = Field(default=None, alias="messageID", pattern=MessageIDPattern)
    agent: str | None = None
    model: str | None = None
    """``provider/model``."""
    arguments: str
    command: str
    variant: str | None = None
    parts: list[PartInput] = Field(default_factory=list)


class SummarizeBody(_Wire):
    """``POST /session/{id}/summarize`` body."""

    provider_id: str = Field(alias="providerID")
    model_id: str = Field(alias="modelID")
    auto: bool = False
