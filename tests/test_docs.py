"""Docs kept honest by test: the CLI reference embeds every command's --help, every config key is documented."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from conftest import run_tf
from treefork import config

ROOT = Path(__file__).resolve().parent.parent


def _generator(name: str = "gen_cli_docs") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text()
    assert current == _generator().render(), "docs/cli.md is stale: run `python scripts/gen_cli_docs.py`"


def test_module_map_is_current() -> None:
    current = (ROOT / "docs" / "architecture.md").read_text()
    assert current == _generator("gen_module_map").render(current), (
        "docs/architecture.md's module map is stale: run `python scripts/gen_module_map.py`"
    )


def test_no_module_imports_from_a_layer_above_its_own(tmp_path: Path) -> None:
    gen = _generator("gen_module_map")
    assert gen.ALLOWED_UP == {} and gen.crossings() == []
    # the check can fail: an import inside a function (as state.py's of backends.base once was) is seen
    probe = tmp_path / "probe.py"
    probe.write_text("def f() -> None:\n    from treefork.backends import base  # noqa: F401\n")
    known = {m.removesuffix(".__init__"): p for m, p in gen.modules().items()}
    assert "backends.base" in gen.imports(probe, known)
    assert gen.layer_of("backends.base") > gen.layer_of("state")


def test_cli_reference_is_what_treefork_prints() -> None:
    """Each block of docs/cli.md is the real `treefork ... -h` output, and every visible command has one."""
    text = (ROOT / "docs" / "cli.md").read_text()
    documented = dict(re.findall(r"^## (treefork[^\n]*)\n\n```\n(.*?)```\n", text, re.MULTILINE | re.DOTALL))
    assert set(documented) == {" ".join(("treefork", *path)) for path in _generator().commands()}
    assert {"treefork", "treefork new", "treefork ls", "treefork rm"} <= set(documented)
    env = {"COLUMNS": "200"}  # click wraps at 80 columns at most
    for title, block in documented.items():
        r = run_tf(ROOT, *title.split()[1:], "-h", env=env)
        assert r.out == block, f"docs/cli.md's `{title} -h` differs from what it prints"


def test_every_config_key_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    keys = list(config.DEFAULTS) + [f"neon.{k}" for k in config.NEON_DEFAULTS]
    missing = [k for k in keys if f"`{k}`" not in text]
    assert not missing, f"undocumented treefork.toml keys: {missing}"
    assert set(config.DOCS) == set(keys), "config.DOCS must describe exactly the known keys"


def test_readme_opens_with_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    block = readme[readme.index("```bash") + 1 : readme.index("```bash") + 3]
    venv = "scripts/venv && . .venv/bin/activate && "
    assert block[0].startswith(venv + "pip install . && treefork demo")
    assert block[1].startswith(venv + "pip install -e '.[test]' && python -m pytest ")
    test_command = block[1].split("#")[0].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.rstrip().splitlines()[-1].strip() == test_command


def test_every_database_variable_treefork_rewrites_is_documented() -> None:
    """The URL variables and every spelling of every built-in family (two were missing once)."""
    from treefork import dbfamilies
    from treefork.workspace import envbuild

    text = (ROOT / "docs" / "configuration.md").read_text()
    names = {*envbuild.POOLED_URL_VARS, *envbuild.DIRECT_URL_VARS}
    for family in dbfamilies.BUILTIN_FAMILIES:
        names |= {name for spellings in family.parts.values() for name in spellings}
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"docs/configuration.md does not name: {missing}"


def test_the_origins_a_workspace_can_have_are_the_documented_ones() -> None:
    """The docs listed three while code wrote five; every `origin=` literal in the code is one of them."""
    import ast

    from treefork.shapes import WORKSPACE
    from treefork.state import ORIGINS

    documented = WORKSPACE["origin"]  # docs/json.md is generated from it
    assert set(re.findall(r"`([a-z-]+)`", documented)) == set(ORIGINS)
    written = set()
    for path in (ROOT / "src" / "treefork").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "origin" and isinstance(node.value, ast.Constant):
                written.add(node.value.value)
    assert written and written <= set(ORIGINS), written - set(ORIGINS)


def test_the_readme_names_every_agent_treefork_integrates() -> None:
    from treefork.agents import registry

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| Agent | Install |") :].split("\n\n")[0]
    missing = [a for a in registry.names() if f"`--{a}`" not in table]
    assert not missing, f"the README's agent table lacks {missing}"
    intro = readme.split("## Quick start")[0]
    assert "opencode" in intro and "Codex" in intro and "Gemini CLI" in intro and "Claude Code" in intro


def test_the_neon_figures_have_one_home() -> None:
    """docs/benchmarks-neon-floor.md is the home of the Neon figures: docs/benchmarks.md embeds it, and the
    README's Neon row is made from it (the two once quoted 0.20/0.35 s against 0.63/0.97 s)."""
    bench = _bench("bench_neon_floor")
    doc = bench.DOC.read_text()
    text = (ROOT / "docs" / "benchmarks.md").read_text()
    assert text.split(bench.BEGIN, 1)[1].split(bench.END, 1)[0] == "\n" + bench.embedded(doc)
    readme = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(bench.README_ROW)]
    assert readme == [bench.readme_row(doc)], "run `python bench/bench_neon_floor.py`, or quote its doc"
    assert re.findall(r"\d+\.\d+", readme[0]), "the row quotes figures"


def _bench(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_no_code_outside_backends_tests_a_backends_name() -> None:
    """What differs between backends is asked of the Backend Protocol or of backends/__init__.py (pre-commit
    asks a language's name once): code outside backends/ that compares with "local" or "neon" is a leak."""
    import ast

    from treefork.backends import BACKENDS

    leaks = []
    for path in (ROOT / "src" / "treefork").rglob("*.py"):
        if "backends" in path.relative_to(ROOT / "src" / "treefork").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                names = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                if any(n in BACKENDS for n in names):
                    leaks.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not leaks, leaks
