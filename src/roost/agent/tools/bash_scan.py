"""What a bash command touches, read from its syntax tree before it runs.

The command is parsed with tree-sitter-bash, the grammar OpenCode's bash tool uses, and
``scan_command`` returns a ``Scan``:

- ``commands``: the source of each simple command, wherever it sits (lists, pipelines,
  subshells, ``$(…)``, loop bodies, …), with its redirections when it has them. These are the
  ``bash`` permission patterns, as in OpenCode, so a rule like ``"rm *": "deny"`` matches
  ``echo hi && rm -rf x``. Directory changes (``cd``, ``pushd``, ``popd``) have no pattern.
- ``always``: ``"<command name> *"`` for each of them, what an "always" reply approves.
- ``paths``: the absolute (lexical, not yet resolved) paths that file-changing commands name:
  the operands of ``cp mv rm rmdir mkdir touch chmod chown chgrp ln tee``, the targets of
  output redirections (``> >> >| &> &>> >&``) and of ``cd``/``pushd``. Option flags are
  skipped, and so is the mode of ``chmod`` and the owner of ``chown``/``chgrp``. ``~`` and
  ``$HOME`` expand; a glob keeps its static prefix (``../build/*.o`` names ``../build/``).
  Writes to ``/dev/null`` and the like change nothing and are left out. The wrappers ``sudo``,
  ``env``, ``nohup``, ``time``, ``command``, ``builtin`` and ``exec`` are looked through.
- ``unresolved``: path arguments whose value is only known at run time (``"$dir"/x``,
  ``$(mktemp)``, ``cd -``, relative paths after a ``cd`` to such a place), or the whole
  command when it did not parse.

Relative paths resolve against the directory the command is in at that point: the workdir,
then wherever a preceding ``cd`` leads. Because a ``cd`` may fail, the scan tracks the *set*
of directories the shell may be in: after ``cd x; …`` it is in ``x`` or still where it was,
after ``cd x && …`` only in ``x``; a subshell, a pipeline stage or ``$(…)`` changes nothing
outside itself; branches and loop bodies add their directories to the set. A function body
runs wherever it is called from, so its relative paths are unresolved, and a function that
changes directory makes the directory unknown from its definition on.

Fail closed: a command tree-sitter cannot parse (``has_error``), or one nested too deeply to
walk, is reported as ``parsed=False`` with the whole command both as its one ``bash`` pattern
and as ``unresolved``, so the tool asks ``external_directory`` for ``*`` (any directory)
before running it. Not covered, as in OpenCode: commands that write through other programs
(``python -c``, ``sed -i``, ``find -delete``, ``xargs``, ``git -C``, ``eval``, ``bash -c``),
``CDPATH``, and flags whose value is a separate word (``sudo -u``'s is known; ``mkdir -m``'s
mode is taken as a path in the current directory, which changes nothing).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Final

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from roost.agent.tools.bash_words import Word, WordReader

FILE_COMMANDS: Final = frozenset(
    {"cp", "mv", "rm", "rmdir", "mkdir", "touch", "chmod", "chown", "chgrp", "ln", "tee"}
)
"""Commands whose operands are paths they create, change or remove."""
CWD_COMMANDS: Final = frozenset({"cd", "pushd", "popd"})
"""Commands that change the shell's directory; they get no ``bash`` pattern (as in OpenCode)."""
OUTPUT_REDIRECTS: Final = frozenset({">", ">>", ">|", "&>", "&>>", ">&"})
HARMLESS_PATHS: Final = frozenset(
    {"/dev/null", "/dev/zero", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/tty"}
)
"""Writing here changes no file (``/dev/fd/N`` is treated the same)."""

_WRAPPERS: Final = frozenset({"sudo", "env", "nohup", "time", "command", "builtin", "exec"})
_SUDO_VALUE_FLAGS: Final = frozenset({"-u", "-g", "-h", "-p", "-C", "-D", "-r", "-t", "-T", "-U"})
_OWNER_COMMANDS: Final = frozenset({"chmod", "chown", "chgrp"})
"""Their first operand is a mode or an owner, not a path (unless ``--reference`` is given)."""
_LOOPS: Final = frozenset(
    {"for_statement", "c_style_for_statement", "while_statement", "until_statement"}
)
_BRANCHES: Final = frozenset(
    {"if_statement", "elif_clause", "else_clause", "case_statement", "case_item"}
)
_CHMOD_MODE = re.compile(r"^[ugoa]*([-+=]([rwxXst]*|[ugo]))+(,[ugoa]*([-+=]([rwxXst]*|[ugo]))+)*$")
_MAX_DEPTH = 200
"""Deeper trees than this are not walked; the command fails closed as unparsed."""

Cwds = frozenset[PurePosixPath] | None
"""The directories the shell may be in at some point of the command; None: not known."""


@dataclass(frozen=True)
class Scan:
    """What ``scan_command`` found (see the module docstring).

    Attributes:
        parsed: False when the command did not parse; it then fails closed.
        commands: ``bash`` permission patterns, in order, without repeats.
        always: The patterns an "always" reply approves, in order, without repeats.
        paths: Absolute lexical paths the command may create, change or remove.
        unresolved: Source text of path arguments only known at run time.
    """

    parsed: bool
    commands: list[str] = field(default_factory=list)
    always: list[str] = field(default_factory=list)
    paths: list[PurePosixPath] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)


def scan_command(command: str, *, cwd: PurePosixPath, home: PurePosixPath) -> Scan:
    """Scan ``command`` as ``bash -c`` would run it in ``cwd``.

    Args:
        cwd: The absolute directory the command starts in.
        home: ``$HOME``, for ``~`` and a bare ``cd``.
    """
    source = command.encode()
    tree = Parser(_bash()).parse(source)
    if not tree.root_node.has_error:
        scanner = _Scanner(source, home)
        try:
            scanner.visit(tree.root_node, frozenset({cwd}), depth=0)
        except (_TooDeep, RecursionError):
            pass
        else:
            return Scan(
                parsed=True,
                commands=list(scanner.commands),
                always=list(scanner.always),
                paths=list(scanner.paths),
                unresolved=list(scanner.unresolved),
            )
    words = command.split()
    return Scan(
        parsed=False,
        commands=[command.strip()],
        always=[f"{words[0]} *" if words else "*"],
        unresolved=[command],
    )


@functools.cache
def _bash() -> Language:
    return Language(tree_sitter_bash.language())


class _TooDeep(Exception):
    """The tree nests deeper than ``_MAX_DEPTH``."""


@dataclass(frozen=True)
class _Flow:
    """Where the shell may be after a node: if it succeeded (``ok``), and in any case."""

    ok: Cwds
    any: Cwds


def _union(*sets: Cwds) -> Cwds:
    out: set[PurePosixPath] = set()
    for cwds in sets:
        if cwds is None:
            return None
        out |= cwds
    return frozenset(out)


def _normalized(path: PurePosixPath) -> PurePosixPath:
    """``..`` folded lexically, as ``cd`` (``-L``, the default) does."""
    return PurePosixPath(os.path.normpath(path))


class _Scanner:
    """Walks one tree; collects into ordered sets (dicts with None values)."""

    def __init__(self, source: bytes, home: PurePosixPath) -> None:
        self.words = WordReader(source, home)
        self.home = home
        self.commands: dict[str, None] = {}
        self.always: dict[str, None] = {}
        self.paths: dict[PurePosixPath, None] = {}
        self.unresolved: dict[str, None] = {}
        self.cwd_changes = 0

    # -- structure -----------------------------------------------------------------------

    def visit(self, node: Node, cwds: Cwds, *, depth: int) -> _Flow:
        if depth > _MAX_DEPTH:
            raise _TooDeep
        kind = node.type
        depth += 1
        if kind in ("program", "compound_statement", "do_group"):
            return self._sequence(node.named_children, cwds, depth)
        if kind == "list":
            return self._list(node, cwds, depth)
        if kind in ("pipeline", "subshell", "command_substitution", "process_substitution"):
            # Each runs in a subshell: a cd inside stays inside.
            self._children(node, cwds, depth, threaded=kind != "pipeline")
            return _Flow(cwds, cwds)
        if kind == "negated_command":
            inner = self._children(node, cwds, depth, threaded=True)
            return _Flow(inner, inner)
        if kind == "redirected_statement":
            for redirect in node.children_by_field_name("redirect"):
                self.visit(redirect, cwds, depth=depth)
            body = node.child_by_field_name("body")
            return _Flow(cwds, cwds) if body is None else self.visit(body, cwds, depth=depth)
        if kind == "command":
            return self._command(node, cwds, depth)
        if kind == "file_redirect":
            self._redirect(node, cwds, depth)
            return _Flow(cwds, cwds)
        if kind in _BRANCHES:
            after = self._children(node, cwds, depth, threaded=True)
            return _Flow(after, after)
        if kind in _LOOPS:
            return self._loop(node, cwds, depth)
        if kind == "function_definition":
            return self._function(node, cwds, depth)
        # Anything else (assignments, tests, words, strings, heredocs) can only hold
        # commands in substitutions and redirections: look inside, the directory unchanged.
        self._children(node, cwds, depth, threaded=False)
        return _Flow(cwds, cwds)

    def _children(self, node: Node, cwds: Cwds, depth: int, *, threaded: bool) -> Cwds:
        """Visit the named children; ``threaded``: each one starts where the last may have
        left the shell. Returns every directory the shell may have been in (with ``cwds``)."""
        seen = cwds
        state = cwds
        for child in node.named_children:
            flow = self.visit(child, state if threaded else cwds, depth=depth)
            if threaded:
                state = flow.any
                seen = _union(seen, state)
        return seen

    def _sequence(self, nodes: list[Node], cwds: Cwds, depth: int) -> _Flow:
        flow = _Flow(cwds, cwds)
        for node in nodes:
            flow = self.visit(node, flow.any, depth=depth)
        return flow

    def _list(self, node: Node, cwds: Cwds, depth: int) -> _Flow:
        """``a && b`` runs ``b`` only where ``a`` succeeded; ``a || b`` where it failed.

        tree-sitter nests a chain to the left (``(a && b) || c``); it is walked as a loop, so
        a long chain is not a deep tree.
        """
        chain: list[tuple[str, Node]] = []
        left = node
        while left.type == "list":
            parts = [c for c in left.named_children if c.type != "comment"]
            operator = next((c.type for c in left.children if not c.is_named), "&&")
            chain.append((operator, parts[-1]))
            left = parts[0]
        flow = self.visit(left, cwds, depth=depth)
        for operator, right_node in reversed(chain):
            if operator == "&&":
                right = self.visit(right_node, flow.ok, depth=depth)
                flow = _Flow(right.ok, _union(flow.any, right.any))
            else:
                right = self.visit(right_node, flow.any, depth=depth)
                flow = _Flow(_union(flow.ok, right.ok), _union(flow.any, right.any))
        return flow

    def _loop(self, node: Node, cwds: Cwds, depth: int) -> _Flow:
        """A body may run again from where its last run left the shell: visit it twice, and
        if the second pass still moves the shell somewhere new, its place is unknown."""
        first = self._children(node, cwds, depth, threaded=True)
        if first == cwds:
            return _Flow(cwds, cwds)
        second = self._children(node, first, depth, threaded=True)
        after = second if second == first else None
        return _Flow(after, after)

    def _function(self, node: Node, cwds: Cwds, depth: int) -> _Flow:
        """The body runs when called, from wherever the caller is: walk it with the
        directory unknown; if it changes directory, so is the caller's after a call."""
        before = self.cwd_changes
        body = node.child_by_field_name("body")
        if body is not None:
            self.visit(body, None, depth=depth)
        if self.cwd_changes != before:
            return _Flow(None, None)
        return _Flow(cwds, cwds)

    # -- simple commands -------------------------------------------------------------------

    def _command(self, node: Node, cwds: Cwds, depth: int) -> _Flow:
        name_node = node.child_by_field_name("name")
        words = [] if name_node is None else [name_node, *node.children_by_field_name("argument")]
        if words and (head := self.words.text(words[0])) not in CWD_COMMANDS:
            parent = node.parent
            whole = parent if parent is not None and parent.type == "redirected_statement" else node
            self.commands[self.words.text(whole).strip()] = None
            self.always[f"{head} *"] = None
        for child in node.named_children:
            self.visit(child, cwds, depth=depth)  # substitutions, redirections, assignments
        if not words:
            return _Flow(cwds, cwds)
        name, args = self._unwrapped(words)
        if name in FILE_COMMANDS:
            for arg in self._path_args(name, args):
                self._path(arg, cwds)
        if name in CWD_COMMANDS:
            self.cwd_changes += 1
            return self._cd(name, args, cwds)
        return _Flow(cwds, cwds)

    def _unwrapped(self, words: list[Node]) -> tuple[str | None, list[Node]]:
        """The command a wrapper (``sudo``, ``env``, …) runs, and its arguments."""
        index = 0
        name = self.words.static(words[0])
        while name in _WRAPPERS:
            index += 1
            while index < len(words):
                arg = self.words.static(words[index]) or ""
                if name == "sudo" and arg in _SUDO_VALUE_FLAGS:
                    index += 2
                elif arg.startswith("-") or (name == "env" and "=" in arg):
                    index += 1
                else:
                    break
            if index >= len(words):
                return None, []
            name = self.words.static(words[index])
        return name, words[index + 1 :]

    def _path_args(self, name: str, args: list[Node]) -> list[Node | Word]:
        """The operands of a file command that are paths (flags and modes/owners skipped)."""
        texts = [self.words.static(a) for a in args]
        operand_pending = name in _OWNER_COMMANDS and not any(
            (t or "").startswith("--reference") for t in texts
        )
        options = True
        out: list[Node | Word] = []
        for arg, text in zip(args, texts, strict=True):
            if options and text == "--":
                options = False
                continue
            if options and text is not None and text.startswith("-") and text != "-":
                if name == "chmod" and operand_pending and _CHMOD_MODE.match(text):
                    operand_pending = False  # `chmod -w file`: the mode, not an option
                elif text.startswith("--target-directory="):
                    word = self.words.value(arg)
                    if word is None:
                        out.append(arg)
                    else:
                        cut = len("--target-directory=")
                        glob = None if word.glob_at is None else word.glob_at - cut
                        out.append(Word(word.text[cut:], glob))
                continue
            if operand_pending:
                operand_pending = False
                continue
            out.append(arg)
        return out

    def _cd(self, name: str, args: list[Node], cwds: Cwds) -> _Flow:
        """Where ``cd``/``pushd`` lead; the target itself is a path the command names.

        A bare ``cd`` goes home; ``cd -``, ``popd``, a bare ``pushd`` and ``pushd +N`` go to a
        place only the running shell knows.
        """
        operands: list[Node] = []
        options = True
        for arg in args:
            text = self.words.static(arg)
            if options and text == "--":
                options = False
            elif options and text is not None and text.startswith("-") and text != "-":
                continue
            else:
                operands.append(arg)
        if not operands:
            if name != "cd":
                return _Flow(None, None)
            targets: frozenset[PurePosixPath] = frozenset({self.home})
        else:
            word = self.words.value(operands[0])
            text = None if word is None or word.glob_at is not None else word.text
            if name == "popd" or text is None or text == "-" or text.startswith("+"):
                self.unresolved[self.words.text(operands[0])] = None
                return _Flow(None, None)
            if text.startswith("/"):
                targets = frozenset({_normalized(PurePosixPath(text))})
            elif cwds is None:
                self.unresolved[self.words.text(operands[0])] = None
                return _Flow(None, None)
            else:
                targets = frozenset(_normalized(base / text) for base in cwds)
        for target in sorted(targets):
            self.paths[target] = None
        return _Flow(targets, _union(targets, cwds))

    def _redirect(self, node: Node, cwds: Cwds, depth: int) -> None:
        destinations = node.children_by_field_name("destination")
        for destination in destinations:
            self.visit(destination, cwds, depth=depth)
        operator = next((c.type for c in node.children if not c.is_named), "")
        if operator not in OUTPUT_REDIRECTS:
            return
        # tree-sitter-bash also files words after the target (`cmd >out arg`) as
        # destinations; they are the command's arguments, checked here all the same.
        for destination in destinations:
            if destination.type != "number":
                self._path(destination, cwds)

    # -- paths ---------------------------------------------------------------------------------

    def _path(self, arg: Node | Word, cwds: Cwds) -> None:
        word = self.words.value(arg) if isinstance(arg, Node) else arg
        if word is None:
            self.unresolved[self.words.text(arg) if isinstance(arg, Node) else ""] = None
            return
        text = word.text if word.glob_at is None else word.text[: word.glob_at]
        text = text or "."
        if text.startswith("/"):
            candidates = [PurePosixPath(text)]
        elif cwds is None:
            self.unresolved[self.words.text(arg) if isinstance(arg, Node) else text] = None
            return
        else:
            candidates = [base / text for base in sorted(cwds)]
        for path in candidates:
            if str(path) not in HARMLESS_PATHS and not str(path).startswith("/dev/fd/"):
                self.paths[path] = None
