"""Regenerate docs/json.md from src/treefork/shapes.py: every record a command prints with --json, field by field
(tests/test_json_shapes.py fails when it is stale)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from treefork import shapes  # noqa: E402

DOC = ROOT / "docs" / "json.md"


def render() -> str:
    conventions = (shapes.__doc__ or "").split("\n\n", 1)[1].strip()
    parts = [
        "# What `--json` prints\n",
        "Generated from `src/treefork/shapes.py` by `python scripts/gen_json_docs.py`; `tests/test_json_shapes.py`"
        " runs every command against it. The field names are stable within a `schema_version` (now"
        f" {shapes.SCHEMA_VERSION}).\n",
        conventions + "\n",
    ]
    for kind, shape in shapes.SHAPES.items():
        rows = "".join(f"| `{field}` | {meaning} |\n" for field, meaning in shape.fields.items())
        parts.append(f"## {kind}\n\nPrinted by {shape.printed_by}.\n\n| field | meaning |\n|---|---|\n{rows}")
    return "\n".join(parts)


if __name__ == "__main__":
    DOC.write_text(render(), encoding="utf-8")
