"""The value of a bash word, as far as it is known before the command runs.

Quote removal as bash does it (backslash escapes, ``'…'``, ``"…"`` with its four escapes,
``$'…'`` without escapes), ``~`` and ``~/…`` at the start of a word, and ``$HOME``/``${HOME}``.
Any other expansion (variables, ``$(…)``, arithmetic, ``~user``) makes the value unknown: None.
Unquoted glob and brace characters are kept but their position is noted, so a caller can take
the static prefix of ``../build/*.o``. Nodes are tree-sitter-bash nodes of the parsed source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from tree_sitter import Node

_GLOB_CHARS: Final = frozenset("*?[{")
_DQ_ESCAPES: Final = frozenset('$`"\\\n')


@dataclass(frozen=True)
class Word:
    """A word's value.

    Attributes:
        glob_at: Index in ``text`` of the first unquoted glob or brace character, if any.
    """

    text: str
    glob_at: int | None = None


class WordReader:
    """Reads word values from one parsed command.

    Args:
        source: The command as parsed (UTF-8); nodes index into it by byte.
        home: What ``~`` and ``$HOME`` expand to.
    """

    def __init__(self, source: bytes, home: PurePosixPath) -> None:
        self.source = source
        self.home = home

    def static(self, node: Node) -> str | None:
        """The word's value when it is fully known and has no glob, else None."""
        word = self.value(node)
        return word.text if word is not None and word.glob_at is None else None

    def value(self, node: Node, *, first: bool = True) -> Word | None:
        """The value of a word-like node; None when it depends on run time.

        Args:
            first: Whether the node starts its word (only there does ``~`` expand).
        """
        kind = node.type
        if kind == "command_name":
            inner = node.named_children
            return self.value(inner[0]) if len(inner) == 1 else None
        if kind == "word":
            return self._unquoted(self.text(node), tilde=first)
        if kind == "number":
            return Word(self.text(node))
        if kind == "raw_string":
            return Word(self.text(node)[1:-1])
        if kind == "ansi_c_string":
            body = self.text(node)[2:-1]
            return None if "\\" in body else Word(body)
        if kind == "string":
            return self._double_quoted(node)
        if kind in ("simple_expansion", "expansion"):
            return self._expansion(node)
        if kind == "concatenation":
            return self._concatenation(node)
        return None

    def _concatenation(self, node: Node) -> Word | None:
        text = ""
        glob_at: int | None = None
        for index, child in enumerate(node.named_children):
            part = self.value(child, first=index == 0)
            if part is None:
                return None
            if glob_at is None and part.glob_at is not None:
                glob_at = len(text) + part.glob_at
            text += part.text
        return Word(text, glob_at)

    def _unquoted(self, raw: str, *, tilde: bool) -> Word | None:
        """An unquoted word: backslashes escape, ``~`` or ``~/…`` at the start is home."""
        prefix = ""
        if tilde and raw.startswith("~"):
            head, slash, rest = raw.partition("/")
            if head != "~":
                return None  # ~user, ~+, ~-: known only to the running shell
            prefix, raw = str(self.home) + slash, rest
        text: list[str] = []
        glob_at: int | None = None
        escaped = False
        for char in raw:
            if escaped:
                text.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                if glob_at is None and char in _GLOB_CHARS:
                    glob_at = len(prefix) + len(text)
                text.append(char)
        return Word(prefix + "".join(text), glob_at)

    def _double_quoted(self, node: Node) -> Word | None:
        """``"…"``: text between the children is kept, escapes of ``$ ` " \\`` removed."""
        out: list[str] = []
        position = node.start_byte + 1
        end = node.end_byte - 1
        for child in node.named_children:
            out.append(
                _unescape_dq(self.source[position : child.start_byte].decode(errors="replace"))
            )
            if child.type == "string_content":
                out.append(_unescape_dq(self.text(child)))
            else:
                value = self._expansion(child)
                if value is None:
                    return None
                out.append(value.text)
            position = child.end_byte
        out.append(_unescape_dq(self.source[position:end].decode(errors="replace")))
        return Word("".join(out))

    def _expansion(self, node: Node) -> Word | None:
        """``$HOME`` and ``${HOME}`` are known; every other expansion is not."""
        if node.type not in ("simple_expansion", "expansion"):
            return None
        if self.text(node) in ("$HOME", "${HOME}"):
            return Word(str(self.home))
        return None

    def text(self, node: Node) -> str:
        """The node's source text."""
        return self.source[node.start_byte : node.end_byte].decode(errors="replace")


def _unescape_dq(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text) and text[index + 1] in _DQ_ESCAPES:
            if text[index + 1] != "\n":
                out.append(text[index + 1])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)
