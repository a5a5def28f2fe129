"""Round 3's finding 43: a 20 MB `.env` with 400,000 keys. `new` must write the workspace's env file byte for
byte as the main one, but for its database settings (and the secret key left out). How long that takes and
how much memory is bench/bench_envfile.py's (docs/benchmarks.md, "Env files"), never asserted here."""

from __future__ import annotations

from pathlib import Path

from conftest import run_tf
from testing.cli import new

KEYS = 400_000


def big_env(main_env: str) -> str:
    """The main .env as init left it, plus 400,000 keys in the spellings apps use (~20 MB)."""
    lines = []
    for i in range(KEYS):
        match i % 4:
            case 0:
                lines.append(f"KEY_{i:06d}=value-{i}-{'x' * 24}\r\n")
            case 1:
                lines.append(f'export Q_{i:06d}="quoted {i} # not a comment"  # a comment\r\n')
            case 2:
                lines.append(f"S_{i:06d}='single {i} \\n kept as written'\r\n")
            case _:
                lines.append(f"# comment {i}\r\n" if i % 8 == 3 else "\r\n")
    return main_env + "".join(lines)


def test_finding_43_new_with_a_400000_key_env_writes_it_byte_exact_but_the_database(tf_server_repo: Path) -> None:
    main = tf_server_repo / ".env"
    text = big_env(main.read_bytes().decode())
    main.write_bytes(text.encode())

    wt = new(tf_server_repo, "big")

    written = (wt / ".env").read_bytes().decode()
    want = [ln for ln in text.splitlines(keepends=True) if not ln.startswith("NEON_API_KEY=")]  # a secret: left out
    got = written.splitlines(keepends=True)
    assert len(got) == len(want)
    changed = [(w, g) for w, g in zip(want, got, strict=True) if w != g]
    assert [w.partition("=")[0] for w, _ in changed] == ["DATABASE_URL"]
    url = run_tf(tf_server_repo, "url", "big").out.strip()
    assert changed[0][1].rstrip("\r\n").strip("'").endswith(url.rpartition("/")[2])  # big's own database
