"""The CLI layer in-process (`main(argv) -> int`), and the behaviour a shell sees: help, errors, completion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_tf
from treefork.cli import main


def test_no_arguments_prints_the_help_and_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: treefork [OPTIONS] [COMMAND] [ARGS]...")
    assert "  new " in out and "-h, --help" in out


def test_the_console_script_alone_exits_0(tmp_path: Path) -> None:
    r = run_tf(tmp_path)
    assert r.out.startswith("Usage: treefork") and r.err == ""


def test_an_unknown_command_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nosuch"]) == 2
    err = capsys.readouterr().err
    assert err == "treefork: error: No such command 'nosuch'. (hint: see `treefork --help`)\n"


def test_a_subcommand_usage_error_points_at_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rm"]) == 2
    assert "(hint: see `treefork rm --help`)" in capsys.readouterr().err


def test_main_runs_a_command_in_process(
    tf_server_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tf_server_repo)
    capsys.readouterr()
    assert main(["ls", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["root"]
    assert main(["url", "nosuch"]) == 1
    assert "no workspace named 'nosuch'" in capsys.readouterr().err


def _complete(cwd: Path, words: str) -> list[str]:
    """What bash's completion asks treefork for `words` (the cursor after the last word)."""
    cword = str(len(words.split(" ")) - 1)
    r = run_tf(cwd, env={"_TREEFORK_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": cword})
    lines = [line for line in r.out.splitlines() if line]
    assert all(line.startswith("plain,") for line in lines), r.out
    return [line.removeprefix("plain,") for line in lines]


def test_workspace_names_complete(tf_server_repo: Path, tmp_path: Path) -> None:
    run_tf(tf_server_repo, "new", "alpha")
    run_tf(tf_server_repo, "new", "alps")
    run_tf(tf_server_repo, "new", "beta")
    assert _complete(tf_server_repo, "treefork rm al") == ["alpha", "alps"]
    assert _complete(tf_server_repo, "treefork rm alpha ") == ["alpha", "alps", "beta"]
    assert _complete(tf_server_repo, "treefork url b") == ["beta"]
    assert _complete(tf_server_repo, "treefork sync ") == ["alpha", "alps", "beta"]
    assert _complete(tf_server_repo, "treefork new gamma --from a") == ["alpha", "alps"]
    outside = tmp_path / "outside"
    outside.mkdir()
    assert _complete(outside, "treefork rm ") == []  # not a repository: nothing, and no error


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_documented_completion_scripts_exist(tmp_path: Path, shell: str) -> None:
    """docs/completion.md tells each shell to source this script."""
    r = run_tf(tmp_path, env={"_TREEFORK_COMPLETE": f"{shell}_source"})
    assert "_TREEFORK_COMPLETE" in r.out and f"{shell}_complete" in r.out
    doc = (Path(__file__).resolve().parent.parent / "docs" / "completion.md").read_text()
    assert f"_TREEFORK_COMPLETE={shell}_source treefork" in doc
