"""Secrets: after a full scenario, no cluster's admin password appears anywhere but treefork's record of it,
and a workspace's own password only in that workspace's env file; file modes are tight; every cluster takes
only SCRAM logins on loopback."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import psycopg
import pytest

from conftest import run_tf
from testing.cli import ls_json
from testing.server import cluster_records, home, root_cluster

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

    records = cluster_records(tf_repo)
    admin_pws = [r["admin_password"] for r in records]
    role_pws = {r["workspace"]: r["role_password"] for r in records}
    assert len(records) == 4 and all(len(pw) >= 16 for pw in admin_pws + list(role_pws.values()))

    for args, r in outputs:
        for pw in admin_pws:
            assert pw not in r.text, f"an admin password in the output of treefork {' '.join(args)}"
        for ws, pw in role_pws.items():
            if args[:2] == ("url", ws) and pw in r.out:
                continue  # `url NAME` prints that workspace's URL on purpose
            assert pw not in r.text, f"{ws}'s password in the output of treefork {' '.join(args)}"

    places = [
        home() / "treefork.log",
        tf_repo / ".git" / "treefork" / "registry.json",
        tf_repo / ".git" / "info" / "exclude",
        tf_repo / ".git" / "config",
        *(home() / "clusters" / r["id"] / "server.log" for r in records),
    ]
    rows = ls_json(tf_repo)
    assert len(rows) == 3
    for row in rows:
        wt = Path(row["path"])
        for p in _files_under(wt):
            if p.name == ".env":
                text = p.read_text()
                assert role_pws[row["name"]] in text
                assert not [ws for ws, pw in role_pws.items() if pw in text and ws != row["name"]]
                assert not [pw for pw in admin_pws if pw in text]
                assert stat.S_IMODE(p.stat().st_mode) == 0o600
            else:
                places.append(p)
        places.extend(_files_under(tf_repo / ".git" / "worktrees", skip_git=False))
    for p in _files_under(tf_repo):
        if p.name != ".env":
            places.append(p)
    for p in places:
        if not p.exists():
            continue
        data = p.read_bytes()
        for pw in admin_pws + list(role_pws.values()):
            assert pw.encode() not in data, f"a password in {p}"
    main_env = (tf_repo / ".env").read_text()
    assert not [pw for pw in admin_pws if pw in main_env]
    for r in records:
        assert stat.S_IMODE((home() / "clusters" / r["id"] / "cluster.json").stat().st_mode) == 0o600
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
    root = root_cluster(tf_repo)
    st = {"port": root["port"], "password": root["admin_password"]}
    with psycopg.connect(
        host="127.0.0.1",
        port=st["port"],
        user="postgres",
        password=st["password"],
        dbname="postgres",
        connect_timeout=5,
    ) as conn:
        (listen,) = conn.execute("SELECT setting FROM pg_settings WHERE name = 'listen_addresses'").fetchone()
        assert set(listen.split(",")) <= {"127.0.0.1", "::1"} and "127.0.0.1" in listen  # loopback only
        assert conn.execute("SELECT setting FROM pg_settings WHERE name = 'unix_socket_directories'").fetchone() == (
            "",
        )
        rules = conn.execute("SELECT type, address, auth_method FROM pg_hba_file_rules WHERE error IS NULL").fetchall()
        assert rules and all(t == "host" and a in ("127.0.0.1", "::1") and m == "scram-sha-256" for t, a, m in rules), (
            rules
        )
    for kw in ({"password": ""}, {"password": "wrong-password"}, {"password": st["password"][:-1]}):
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                host="127.0.0.1", port=st["port"], user="postgres", dbname="postgres", connect_timeout=5, **kw
            ).close()
    role = root["role"]
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
