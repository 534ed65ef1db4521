"""``question``: ask the user one or more multiple-choice questions and wait for answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from roost.agent.tools.base import Params, Tool, ToolContext, ToolResult


class QuestionOption(BaseModel):
    label: str = Field(description="Short answer text shown as a choice")
    description: str = Field(description="What choosing it means")


class QuestionItem(BaseModel):
    question: str = Field(description="The full question")
    header: str = Field(description="A very short label for the question")
    options: list[QuestionOption] = Field(description="The choices")
    multiple: bool | None = Field(default=None, description="Allow several choices")


class QuestionParams(Params):
    questions: list[QuestionItem] = Field(description="Questions to ask, in order")


class QuestionTool(Tool):
    """Asks through ``ctx.ask_question`` (a durable ``question.asked`` request) and waits."""

    name = "question"
    changes_files = False
    description = (
        "Ask the user one or more questions with predefined choices and wait for the answers. "
        "Use it when a decision is genuinely the user's to make; do not ask what you can find "
        "out yourself."
    )
    Params = QuestionParams

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        """Return the answers as ``"question"="answer, …"`` lines."""
        questions = [q.model_dump(exclude_none=True) for q in params.questions]
        answers = await ctx.ask_question(questions)
        lines = []
        for q, chosen in zip(questions, answers, strict=False):
            lines.append(f'"{q["question"]}"="{", ".join(chosen) or "Unanswered"}"')
        output = "User has answered your questions: " + ", ".join(lines) + "."
        title = f"Asked {len(questions)} question{'s' if len(questions) != 1 else ''}"
        return ToolResult(output=output, title=title, metadata={"answers": answers})
