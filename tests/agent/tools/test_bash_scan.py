"""The bash command scan: commands and the paths they change, read from the parsed tree."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from roost.agent.tools.bash_scan import Scan, scan_command

PROJECT = PurePosixPath("/w/project")
HOME = PurePosixPath("/home/me")


def scan(command: str, cwd: PurePosixPath = PROJECT) -> Scan:
    return scan_command(command, cwd=cwd, home=HOME)


def paths(command: str) -> list[str]:
    """The scanned paths, ``..`` folded (the tool resolves them; this only reads them)."""
    result = scan(command)
    assert result.parsed and result.unresolved == [], result
    folded = (PurePosixPath(*_fold(p.parts)) for p in result.paths)
    return [str(p) for p in folded]


def _fold(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        else:
            out.append(part)
    return out


# -- the bash permission: one pattern per simple command -----------------------------------


def test_each_simple_command_is_a_pattern_with_its_name_for_always() -> None:
    result = scan("git status && npm test || echo failed; ls -la | grep x")
    assert result.commands == ["git status", "npm test", "echo failed", "ls -la", "grep x"]
    assert result.always == ["git *", "npm *", "echo *", "ls *", "grep *"]


def test_commands_inside_subshells_and_substitutions_are_patterns_too() -> None:
    result = scan('(cd sub && make) ; x="$(date +%s)"; diff <(ls a) `pwd`')
    assert result.commands == ["make", "date +%s", "diff <(ls a) `pwd`", "ls a", "pwd"]


def test_a_redirected_command_keeps_its_redirections_and_cd_has_no_pattern() -> None:
    result = scan("cd sub; cat a > b 2>&1")
    assert result.commands == ["cat a > b 2>&1"]
    assert result.always == ["cat *"]


def test_repeated_commands_give_one_pattern() -> None:
    assert scan("rm a; rm a").commands == ["rm a"]
    assert scan("rm a; rm b").always == ["rm *"]


# -- file-changing commands ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("cp README ../x", ["/w/project/README", "/w/x"]),
        ("mv -f a /tmp/b", ["/w/project/a", "/tmp/b"]),
        ("rm -rf ../x", ["/w/x"]),
        ("rmdir ../d", ["/w/d"]),
        ("mkdir -p ../a/b", ["/w/a/b"]),
        ("touch ../x", ["/w/x"]),
        ("ln -sf ../target link", ["/w/target", "/w/project/link"]),
        ("echo hi | tee -a ../log", ["/w/log"]),
        ("ls ../x; cat ../y; grep z ../w", []),
    ],
)
def test_operands_of_file_commands_are_paths(command: str, expected: list[str]) -> None:
    assert paths(command) == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("chmod 755 ../x", ["/w/x"]),
        ("chmod -R u+x,go-w ../x ../y", ["/w/x", "/w/y"]),
        ("chmod +x ../x", ["/w/x"]),
        ("chmod -w ../x", ["/w/x"]),
        ("chmod --reference=ref ../x", ["/w/x"]),
        ("chown -R me:staff ../x", ["/w/x"]),
        ("chgrp staff ../x", ["/w/x"]),
    ],
)
def test_the_mode_or_owner_of_chmod_chown_is_not_a_path(command: str, expected: list[str]) -> None:
    assert paths(command) == expected


def test_flags_are_skipped_until_double_dash() -> None:
    assert paths("rm -rf --verbose -- -x ../y") == ["/w/project/-x", "/w/y"]


def test_target_directory_given_as_an_option_is_a_path() -> None:
    assert paths("cp --target-directory=../out a") == ["/w/out", "/w/project/a"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ('cp a "../with space"', ["/w/project/a", "/w/with space"]),
        ("cp a '../single $quoted'", ["/w/project/a", "/w/single $quoted"]),
        ("cp a ../back\\ slashed", ["/w/project/a", "/w/back slashed"]),
        ('touch "..""/"joined', ["/w/joined"]),
        ('touch "a\\"b"', ['/w/project/a"b']),
        ("touch $'../ansi'", ["/w/ansi"]),
    ],
)
def test_quoted_paths_are_unquoted(command: str, expected: list[str]) -> None:
    assert paths(command) == expected


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("touch ~", ["/home/me"]),
        ("touch ~/notes", ["/home/me/notes"]),
        ('touch ~/"my notes"', ["/home/me/my notes"]),
        ("touch $HOME/a ${HOME}/b", ["/home/me/a", "/home/me/b"]),
        ('touch "$HOME/c"', ["/home/me/c"]),
        ("touch '~/literal'", ["/w/project/~/literal"]),
        ("touch /etc/x", ["/etc/x"]),
    ],
)
def test_home_and_absolute_paths(command: str, expected: list[str]) -> None:
    assert paths(command) == expected


def test_a_glob_names_its_static_prefix() -> None:
    assert paths("rm ../build/*.o *.tmp 'lit*'") == ["/w/build", "/w/project", "/w/project/lit*"]


def test_wrappers_are_looked_through() -> None:
    assert paths("sudo -u root rm ../a") == ["/w/a"]
    assert paths("env A=1 B=2 touch ../b") == ["/w/b"]
    assert paths("nohup cp x ../c") == ["/w/project/x", "/w/c"]
    assert paths("time command rm ../d") == ["/w/d"]


# -- redirections ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("echo hi > ../x", ["/w/x"]),
        ("echo hi >> ../x", ["/w/x"]),
        ("echo hi &> ../x", ["/w/x"]),
        ("echo hi 2> ../err >| ../out", ["/w/err", "/w/out"]),
        ("> ../x echo hi", ["/w/x"]),
        ("{ echo a; echo b; } > ../x", ["/w/x"]),
        ("cat <<EOF > ../x\nhello\nEOF\n", ["/w/x"]),
        ("cat < ../in; cat <<< ../word", []),
        ("echo hi > /dev/null 2>&1 >&2; echo x >/dev/stderr", []),
    ],
)
def test_output_redirections_are_paths(command: str, expected: list[str]) -> None:
    assert paths(command) == expected


def test_a_redirection_resolves_before_the_cd_it_carries() -> None:
    assert paths("cd .. > log") == ["/w/project/log", "/w"]


# -- the directory a command runs in ----------------------------------------------------


def test_cd_then_and_runs_the_rest_in_the_new_directory() -> None:
    assert paths("cd .. && touch x") == ["/w", "/w/x"]


def test_cd_then_semicolon_may_also_run_where_it_was_if_cd_failed() -> None:
    assert paths("cd sub; rm ../x") == ["/w/project/sub", "/w/x", "/w/project/x"]


def test_or_runs_its_right_side_where_the_left_may_have_left_it() -> None:
    assert paths("cd /tmp || touch a") == ["/tmp", "/tmp/a", "/w/project/a"]


def test_a_subshell_pipeline_or_substitution_keeps_its_cd_to_itself() -> None:
    assert paths("(cd .. && touch a); touch b") == ["/w", "/w/a", "/w/project/b"]
    assert paths("cd .. | cat; touch c") == ["/w", "/w/project/c"]
    assert paths("echo $(cd ..); touch d") == ["/w", "/w/project/d"]


def test_the_workdir_is_where_relative_paths_start() -> None:
    result = scan("touch a", cwd=PurePosixPath("/elsewhere"))
    assert result.paths == [PurePosixPath("/elsewhere/a")]


def test_a_bare_cd_goes_home() -> None:
    assert paths("cd && touch x") == ["/home/me", "/home/me/x"]


def test_cd_in_a_branch_adds_a_place_the_shell_may_be() -> None:
    assert paths("if true; then cd ..; fi; touch x") == ["/w", "/w/x", "/w/project/x"]


def test_cd_in_a_loop_that_keeps_moving_makes_the_directory_unknown() -> None:
    result = scan("for i in 1 2; do cd sub; done; touch x")
    assert result.unresolved == ["x"]


def test_a_function_that_changes_directory_makes_it_unknown() -> None:
    result = scan("up() { cd ..; }; up; touch x")
    assert "x" in result.unresolved


@pytest.mark.parametrize(
    ("command", "unresolved"),
    [
        ('cp a "$dest"', ['"$dest"']),
        ("rm -rf $(mktemp -d)/x", ["$(mktemp -d)/x"]),
        ("touch ~other/x", ["~other/x"]),
        ("cd -; touch y", ["-", "y"]),
        ("cd $dir && touch z", ["$dir", "z"]),
        ("echo hi > ${OUT:-log}", ["${OUT:-log}"]),
    ],
)
def test_paths_known_only_at_run_time_are_unresolved(command: str, unresolved: list[str]) -> None:
    result = scan(command)
    assert result.parsed
    assert result.unresolved == unresolved


# -- failing closed -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["echo $((", "cp a ../b <> c", "if true; then", "'unclosed"])
def test_a_command_that_does_not_parse_is_unresolved_as_a_whole(command: str) -> None:
    result = scan(command)
    assert not result.parsed
    assert result.unresolved == [command]
    assert result.commands == [command.strip()]
    assert result.always == [f"{command.split()[0]} *"]


def test_a_command_nested_too_deep_to_walk_fails_closed() -> None:
    command = "echo " + "$(echo " * 400 + "x" + ")" * 400
    result = scan(command)
    assert not result.parsed
    assert result.unresolved == [command]


def test_a_long_and_chain_is_followed_to_its_end() -> None:
    command = " && ".join(["cd sub"] * 300 + ["touch ../../x"])
    result = scan(command)
    assert result.parsed
    deepest = PurePosixPath("/w/project", *["sub"] * 300)
    assert result.paths[-1] == deepest / "../../x"
