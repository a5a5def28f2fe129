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
    _add(parts, cli, click.Context(cli, info_name="treefork"), level=2)
    return "\n".join(parts)


def _add(parts: list[str], command: click.Command, ctx: click.Context, *, level: int) -> None:
    """This command's help, then its subcommands' one heading level down (the root and its commands share ##)."""
    parts.append(f"{'#' * level} {ctx.info_name}\n\n```\n{command.get_help(ctx)}\n```\n")
    if not isinstance(command, click.Group):
        return
    for name in sorted(command.list_commands(ctx)):
        sub = command.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            _add(
                parts,
                sub,
                click.Context(sub, info_name=f"{ctx.info_name} {name}", parent=ctx),
                level=level + (ctx.parent is not None),
            )


if __name__ == "__main__":
    (ROOT / "docs" / "cli.md").write_text(render())
