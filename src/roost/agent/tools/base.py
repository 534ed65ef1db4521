"""The tool protocol: what a tool is, what it may ask of the engine, and what it returns.

A tool is a named function the model can call, with OpenCode's name and input schema
(``opencode-1.18.34-tool-schemas.json``). Tools live in ``agent/`` and know nothing about
storage or HTTP: everything that must be durable or visible (permission prompts, questions,
streamed output, child sessions, process ids) goes through the ``ToolContext`` the engine hands
them. A tool reports failure by raising ``ToolError`` (the part ends in ``error`` with its
message, and the model is told); cancellation (abort) arrives as ``asyncio.CancelledError``,
which a tool must let propagate after cleaning up in ``finally``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

MAX_OUTPUT_LINES = 2000
"""Longest tool output (lines) the model sees; the rest is kept on disk (as OpenCode does)."""
MAX_OUTPUT_BYTES = 50 * 1024
"""Longest tool output (bytes, UTF-8) the model sees."""
PROCESS_OWNER_ENV = "ROOST_TOOL_OWNER"
"""Environment variable naming the server that started a tool process (``process_owner``)."""


class ToolError(Exception):
    """The tool failed; ``message`` becomes the part's ``state.error`` and the model sees it.

    Attributes:
        ends_turn: The user said no (rejected a permission request, dismissed a question):
            the turn ends after this step instead of calling the model again, as OpenCode
            1.18.34 does with its ``RejectedError`` unless ``experimental.continue_loop_on_deny``.
            The model reads the error with the next prompt.
    """

    def __init__(self, message: str, *, ends_turn: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.ends_turn = ends_turn


class PermissionRejected(ToolError):
    """The user (or a ``deny`` rule) refused a permission the tool asked for."""


@dataclass(frozen=True)
class ToolResult:
    """A completed call.

    Attributes:
        output: What the model sees (already truncated by the tool if it streams; otherwise
            the engine truncates to ``MAX_OUTPUT_LINES`` / ``MAX_OUTPUT_BYTES``).
        title: Short label for UIs (``ToolStateCompleted.title``).
        metadata: Tool-specific details for UIs (``ToolStateCompleted.metadata``).
        attachments: Files the call produced, as ``FilePart`` fields without the ids
            (``{"type": "file", "mime", "url", "filename"?}``); the engine adds ``id``,
            ``sessionID`` and ``messageID`` (``ToolStateCompleted.attachments``).
    """

    output: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    attachments: list[dict[str, Any]] = field(default_factory=list)


class ToolContext(Protocol):
    """What a running tool may ask of the engine. Every method is safe to cancel."""

    @property
    def session_id(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def call_id(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def directory(self) -> Path:
        """The session's project directory; relative paths resolve against it."""
        ...

    @property
    def output_path(self) -> Path:
        """Where this call's full output is kept when its result is truncated.

        Named from Roost's own part id, never from provider-supplied text (a call id such as
        ``../../x`` must not choose where a file is written). The folder may not exist yet.
        """
        ...

    @property
    def process_owner(self) -> str:
        """The server process's owner id, set as ``PROCESS_OWNER_ENV`` in the environment of
        every process the call starts, so that ones that leave their process group
        (``setsid cmd &``) are still found and killed on stop or by recovery."""
        ...

    async def ask_permission(
        self,
        permission: str,
        patterns: list[str],
        *,
        always: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Check ``permission`` (``bash``, ``edit``, ``read``, ``external_directory``, …) for
        ``patterns`` against the agent's rules; ``ask`` waits for a reply.

        Raises:
            PermissionRejected: A rule denies it, or the user rejected it.
        """
        ...

    async def update(self, *, title: str | None = None, metadata: dict[str, Any]) -> None:
        """Publish progress on the running part (``state.metadata``, e.g. streamed output)."""
        ...

    async def update_todos(self, todos: list[dict[str, Any]]) -> None:
        """Replace the session's todo list (stored; emits ``todo.updated``)."""
        ...

    async def ask_question(self, questions: list[dict[str, Any]]) -> list[list[str]]:
        """Ask the user (``question.asked``) and wait: one list of chosen labels per question.

        Raises:
            ToolError: The question was rejected or timed out without a default.
        """
        ...

    async def run_subtask(
        self, *, agent: str, prompt: str, description: str, task_id: str | None
    ) -> SubtaskResult:
        """Run a sub-agent in a child session (``task_id`` continues an earlier one).

        Raises:
            ToolError: The child failed; the message says why.
        """
        ...

    async def record_process(self, pgid: int) -> None:
        """Remember (durably) a process group this call started, so recovery can kill it."""
        ...

    async def forget_process(self, pgid: int) -> None:
        """The process group has exited (or was killed)."""
        ...


@dataclass(frozen=True)
class SubtaskResult:
    """A finished child session: its id and the final text of its last answer."""

    session_id: str
    text: str
    model: dict[str, str] = field(default_factory=dict)


class Tool:
    """Base class for tools: ``name``, ``description``, a pydantic ``Params`` model whose JSON
    schema is what the model sees, and ``run``.

    Attributes:
        read_only: Calls of read-only tools in one step may run concurrently.
        changes_files: Whether a call may change the project's files: the engine snapshots
            the files around a step that makes such a call, so revert can undo it.

    Built-in tools set ``name`` and ``description`` on the class; tools made at run time (one per
    tool an MCP server lists) set them on the instance.
    """

    name: str
    description: str
    Params: ClassVar[type[BaseModel]]
    read_only: ClassVar[bool] = False
    changes_files: ClassVar[bool] = True

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the parameters (OpenAI ``function.parameters``).

        Computed once per tool class: pydantic's schema generation costs milliseconds, and
        every model request of every turn sends the tool definitions.
        """
        cls = type(self)
        cached: dict[str, Any] | None = cls.__dict__.get("_parameters_cache")
        if cached is None:
            cached = self.Params.model_json_schema()
            cached.pop("title", None)
            for prop in cached.get("properties", {}).values():
                prop.pop("title", None)
            cls._parameters_cache = cached  # type: ignore[attr-defined]  # per-class memo
        return cached

    def parse(self, arguments: dict[str, Any]) -> BaseModel:
        """Validate the model's arguments.

        Raises:
            ToolError: They do not fit the schema; the message says how, for the model.
        """
        try:
            return self.Params.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(f"Invalid arguments for tool {self.name}: {problems}") from exc

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """Execute the call (``params`` is an instance of ``Params``)."""
        raise NotImplementedError


class Params(BaseModel):
    """Base for tool parameter models: unknown fields are ignored, as models add them."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


def truncate_output(text: str, *, save_to: Path | None) -> tuple[str, bool]:
    """Cut ``text`` to ``MAX_OUTPUT_LINES`` lines and ``MAX_OUTPUT_BYTES`` bytes.

    When cut and ``save_to`` is given, the full text is written there and the returned text
    ends with a note saying where.

    Returns:
        ``(text the model sees, whether it was cut)``.
    """
    lines = text.split("\n")
    cut = False
    if len(lines) > MAX_OUTPUT_LINES:
        lines = lines[:MAX_OUTPUT_LINES]
        cut = True
    kept = "\n".join(lines)
    data = kept.encode()
    if len(data) > MAX_OUTPUT_BYTES:
        kept = data[:MAX_OUTPUT_BYTES].decode(errors="ignore")
        cut = True
    if not cut:
        return text, False
    note = "\n\n... output truncated"
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        save_to.write_text(text, encoding="utf-8")
        note += f"; the full output ({len(text.encode())} bytes) is in {save_to}"
    return kept + note, True
