"""Regenerate docs/cli.md from the commands' own --help (tests/test_docs.py fails when it is stale)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from treefork.cli import cli  # noqa: E402


def render() -> str:
    parts = ["# Command reference\n", "Generated from each command's `--help` by `python scripts/gen_cli_docs.py`.\n"]
    ctx = click.Context(cli, info_name="treefork")
    parts.append(f"## treefork\n\n```\n{cli.get_help(ctx)}\n```\n")
    for name in sorted(cli.list_commands(ctx)):
        command = cli.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub = click.Context(command, info_name=f"treefork {name}", parent=ctx)
        parts.append(f"## treefork {name}\n\n```\n{command.get_help(sub)}\n```\n")
        if isinstance(command, click.Group):
            for subname in sorted(command.list_commands(sub)):
                subcommand = command.get_command(sub, subname)
                if subcommand is None or subcommand.hidden:
                    continue
                subsub = click.Context(subcommand, info_name=f"treefork {name} {subname}", parent=sub)
                parts.append(f"### treefork {name} {subname}\n\n```\n{subcommand.get_help(subsub)}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    (ROOT / "docs" / "cli.md").write_text(render())
