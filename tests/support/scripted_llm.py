"""The scripted LLM lives in ``roost.testing`` (``roost chaos`` uses it too); tests import it
from here."""

from roost.testing.scripted_llm import (
    AUX_MODEL,
    MODEL_ID,
    Delay,
    Drop,
    Fail,
    Hang,
    Reasoning,
    ScriptedLLM,
    Step,
    Text,
    ToolCall,
    Turn,
    text_turn,
    tool_turn,
)

__all__ = [
    "AUX_MODEL",
    "MODEL_ID",
    "Delay",
    "Drop",
    "Fail",
    "Hang",
    "Reasoning",
    "ScriptedLLM",
    "Step",
    "Text",
    "ToolCall",
    "Turn",
    "text_turn",
    "tool_turn",
]
