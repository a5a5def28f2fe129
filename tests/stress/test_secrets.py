"""Secrets: after a full scenario, neither the superuser password nor the repo role's password appears
anywhere it should not; file modes are tight; the server only takes password logins on loopback."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import psycopg
import pytest

from conftest import run_tf

from .conftest import home, ls_json, server_state

pytestmark = pytest.mark.stress


def _files_under(root: Path, *, skip_git: bool = True):
    for dirpath, dirnames, filenames in os.walk(root):
        if skip_git and ".git" in dirnames:
            dirnames.remove(".git")
        for f in filenames:
            p = Path(dirpath) / f
            if p.is_file() and not p.is_symlink():
                yield p


def test_no_secret_leaks_after_a_full_scenario(tf_repo: Path) -> None:
    outputs = []

    def tf(*args, check=True):
        r = run_tf(tf_repo, *args, check=check)
        outputs.append((args, r))
        return r

    for n in ("s1", "s2", "team/s3"):
        tf("new", n)
    tf("new", "s4", "--json")
    tf("ls")
    tf("ls", "--json")
    tf("url", "s1")
    tf("server", "status", "--json")
    tf("server", "status")
    tf("rm", "s4")
    tf("gc")
    tf("gc", "--json")
    failing = run_tf(tf_repo, "new", "s5", env={"TREEFORK_FAIL_AT": "new:after-db"}, check=False)
    outputs.append((("new", "s5", "(failing)"), failing))
    assert failing.rc == 1
    bug = run_tf(tf_repo, "new", "s1", "--from", "nope", check=False)  # an ordinary user error
    outputs.append((("new", "--from nope"), bug))

    superpw = server_state()["password"]
    secrets_file = tf_repo / ".git" / "treefork" / "secrets.json"
    role_pw = json.loads(secrets_file.read_text())["role_password"]
    assert len(superpw) >= 16 and len(role_pw) >= 16

    for args, r in outputs:
        if args[:1] == ("url",):
            # `url` prints the workspace's URL on stdout on purpose; never the superuser password
            assert superpw not in r.text
            assert role_pw not in r.err
            continue
        for pw, what in ((superpw, "superuser"), (role_pw, "role")):
            assert pw not in r.out and pw not in r.err, f"{what} password in the output of treefork {' '.join(args)}"

    places = [
        home() / "treefork.log",
        home() / "pg" / "server.log",
        tf_repo / ".git" / "treefork" / "registry.json",
        tf_repo / ".git" / "info" / "exclude",
        tf_repo / ".git" / "config",
    ]
    wts = [Path(r["path"]) for r in ls_json(tf_repo)]
    assert len(wts) == 3
    for wt in wts:
        for p in _files_under(wt):
            if p.name == ".env":
                text = p.read_text()
                assert superpw not in text, f"superuser password in {p}"
                assert stat.S_IMODE(p.stat().st_mode) == 0o600
            else:
                places.append(p)
        # the worktree's .git file, and its admin dir in the main repo
        places.extend(_files_under(tf_repo / ".git" / "worktrees", skip_git=False))
    for p in _files_under(tf_repo):
        if p.name != ".env":
            places.append(p)
    for p in places:
        if not p.exists():
            continue
        data = p.read_bytes()
        assert superpw.encode() not in data, f"superuser password in {p}"
        assert role_pw.encode() not in data, f"role password in {p}"
    # the main worktree's .env carries the root URL (with the role password, by design) but never the superuser's
    assert superpw not in (tf_repo / ".env").read_text()

    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((home() / "server.json").stat().st_mode) == 0o600
    run_tf(tf_repo, "rm", "s1", "s2", "team/s3")


def _non_loopback_ip() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def test_server_listens_on_loopback_only_and_wants_a_password(tf_repo: Path) -> None:
    st = server_state()
    with psycopg.connect(
        host="127.0.0.1",
        port=st["port"],
        user="postgres",
        password=st["password"],
        dbname="postgres",
        connect_timeout=5,
    ) as conn:
        assert conn.execute("SELECT setting FROM pg_settings WHERE name = 'listen_addresses'").fetchone() == (
            "127.0.0.1",
        )
        assert conn.execute("SELECT setting FROM pg_settings WHERE name = 'unix_socket_directories'").fetchone() == (
            "",
        )
        rules = conn.execute("SELECT type, address, auth_method FROM pg_hba_file_rules WHERE error IS NULL").fetchall()
        assert rules and all(t == "host" and a == "127.0.0.1" and m == "scram-sha-256" for t, a, m in rules), rules
    for kw in ({"password": ""}, {"password": "wrong-password"}, {"password": st["password"][:-1]}):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                host="127.0.0.1", port=st["port"], user="postgres", dbname="postgres", connect_timeout=5, **kw
            ).close()
    role = "tf_" + json.loads((tf_repo / ".git" / "treefork" / "registry.json").read_text())["repo_id"]
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1", port=st["port"], user=role, password="nope", dbname="postgres", connect_timeout=5
        ).close()
    ip = _non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback local address to try")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host=ip, port=st["port"], user="postgres", password=st["password"], dbname="postgres", connect_timeout=5
        ).close()
