"""The local backend's trust boundary (docs/local-backend.md, "Trust boundary"): the red team's round-3 attacks
1, 2, 5, 6 and 7, each replayed with real clusters and the agent's own URL (`treefork url NAME`), now failing."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from conftest import run_tf
from testing.cli import assert_one_line_error, new
from testing.server import admin_conn, cluster_of, home
from treefork.backends.local.ports import loopbacks

SCRAM = re.compile(rb"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")


def agent_url(repo: Path, name: str) -> str:
    return run_tf(repo, "url", name).out.strip()


def record(repo: Path, name: str) -> dict[str, Any]:
    rec = cluster_of(repo, name)
    assert rec is not None
    return rec


def data_dir(rec: dict[str, Any]) -> Path:
    return home() / "clusters" / rec["id"] / "data"


def refused(url: str, statement: str) -> str:
    """The error PostgreSQL gives the workspace's role for statement (which must fail)."""
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(psycopg.Error) as e:
        conn.execute(statement)
    return str(e.value)


# ---- 1. the workspace's role is not a superuser --------------------------------------------------------
def test_finding_1_workspace_role_cannot_run_programs(tf_repo: Path) -> None:
    new(tf_repo, "a")
    for url in (agent_url(tf_repo, "a"), agent_url(tf_repo, "root")):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TEMP TABLE o (l text)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("COPY o FROM PROGRAM 'id'")
        assert "permission denied" in refused(url, "SELECT pg_read_binary_file('global/1260')")
        assert "permission denied" in refused(url, "COPY (SELECT 1) TO '/tmp/treefork-finding-1'")
        assert "permission denied" in refused(url, "ALTER SYSTEM SET listen_addresses = '*'")
        assert "permission denied" in refused(url, "CREATE EXTENSION file_fdw")  # untrusted: server files
        assert "permission denied" in refused(url, "CREATE FUNCTION f() RETURNS int LANGUAGE c AS 'x', 'y'")
        assert "permission denied" in refused(url, "CREATE ROLE intruder SUPERUSER")
        assert "permission denied" in refused(url, "ALTER ROLE postgres PASSWORD 'mine'")
        with psycopg.connect(url, autocommit=True) as conn:  # what apps and test runners need still works
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            conn.execute("CREATE TABLE public.kept (n int)")
            conn.execute("CREATE DATABASE test_app")
            conn.execute("DROP DATABASE test_app")


def test_finding_1_a_cluster_made_by_an_older_treefork_loses_its_superuser_role(tf_repo: Path) -> None:
    """An older treefork made the role a superuser; the next command that touches the cluster takes it away."""
    new(tf_repo, "old")
    rec = record(tf_repo, "old")
    with admin_conn(rec) as conn:
        conn.execute(f"ALTER ROLE {rec['role']} SUPERUSER")
        conn.execute(f"GRANT pg_execute_server_program TO {rec['role']}")
    path = home() / "clusters" / rec["id"] / "cluster.json"
    old = json.loads(path.read_text())
    del old["least_privilege"]  # a record as an older treefork wrote it
    path.write_text(json.dumps(old))
    url = agent_url(tf_repo, "old")
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row == (False,)
        assert conn.execute("SELECT pg_has_role('pg_execute_server_program', 'MEMBER')").fetchone() == (False,)
    assert "permission denied" in refused(url, "COPY (SELECT 1) TO PROGRAM 'id'")
    assert record(tf_repo, "old")["least_privilege"] is True


# ---- 2. a copy follows no link ----------------------------------------------------------------------
def test_finding_2_a_fork_does_not_copy_what_a_planted_symlink_points_to(tf_repo: Path, tmp_path: Path) -> None:
    """A link planted in the parent's data directory (`leak -> /etc/shadow`) is left out of forks and resets,
    which as root run with root's rights."""
    secret = tmp_path / "root-only"
    secret.write_text("root-only-secret\n")
    secret.chmod(0o600)  # as root: the server user cannot read it
    new(tf_repo, "a")
    parent = data_dir(record(tf_repo, "a"))
    os.symlink(secret, parent / "leak_shadow")
    os.symlink(secret, parent / "base" / "leak_in_base")
    new(tf_repo, "grandkid", "--from", "a")
    run_tf(tf_repo, "reset", "grandkid", "--from", "a")  # the same copy, into an existing workspace
    child = data_dir(record(tf_repo, "grandkid"))
    assert not (child / "leak_shadow").exists() and not (child / "leak_shadow").is_symlink()
    assert not (child / "base" / "leak_in_base").exists()
    assert not [p for p in child.rglob("*") if p.is_file() and b"root-only-secret" in p.read_bytes()]
    with psycopg.connect(agent_url(tf_repo, "grandkid")) as conn:  # and the fork works
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---- 5. no parent's verifier in a child ----------------------------------------------------------------
def verifiers(rec: dict[str, Any]) -> set[bytes]:
    with admin_conn(rec) as conn:
        rows = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL").fetchall()
    return {r[0].encode() for r in rows}


def scram_strings(directory: Path) -> set[bytes]:
    found: set[bytes] = set()
    for path in directory.rglob("*"):
        if path.is_file():
            found |= set(SCRAM.findall(path.read_bytes()))
    return found


def test_finding_5_a_childs_files_hold_no_verifier_of_its_parent(tf_repo: Path) -> None:
    new(tf_repo, "a")
    new(tf_repo, "kid", "--from", "a")
    parent_secrets = verifiers(record(tf_repo, "a")) | verifiers(record(tf_repo, "<root>"))
    kid = record(tf_repo, "kid")
    in_files = scram_strings(data_dir(kid) / "global")
    assert in_files == verifiers(kid)  # the child's own, live verifiers and nothing else
    assert not in_files & parent_secrets
    with admin_conn(kid) as conn:  # read as the kit's extract_verifiers.py does
        raw = conn.execute("SELECT pg_read_binary_file(pg_relation_filepath('pg_authid'))").fetchone()[0]
    assert not set(SCRAM.findall(bytes(raw))) & parent_secrets


def test_finding_5_a_roots_admin_secret_is_its_own_not_the_pristine_clusters(tf_repo: Path) -> None:
    pristines = list((home() / "pristine").glob("*/data"))  # one a PostgreSQL the tests ran (the wheel's at least)
    pristine_secrets = {s for p in pristines for s in scram_strings(p / "global")}
    assert len(pristine_secrets) >= len(pristines) >= 1  # each pristine admin's verifier, which every root starts from
    root = record(tf_repo, "<root>")
    assert not scram_strings(data_dir(root) / "global") & pristine_secrets
    assert scram_strings(data_dir(root) / "global") == verifiers(root)


# ---- 6. ALTER SYSTEM cannot override treefork's settings ---------------------------------------------
def test_finding_6_alter_system_cannot_open_a_cluster_or_its_forks(tf_repo: Path, tmp_path: Path) -> None:
    new(tf_repo, "a")
    rec = record(tf_repo, "a")
    evil_hba = tmp_path / "evil_hba"
    evil_hba.write_text("host all all 0.0.0.0/0 trust\n")
    evil_hba.chmod(0o644)
    with admin_conn(rec) as conn:  # what a superuser agent did (an older treefork's role): treefork's admin here
        conn.execute("ALTER SYSTEM SET listen_addresses = '*'")
        conn.execute(f"ALTER SYSTEM SET hba_file = '{evil_hba}'")
        conn.execute("ALTER SYSTEM SET port = 5999")
        conn.execute("ALTER SYSTEM SET unix_socket_directories = '/tmp'")
    run_tf(tf_repo, "server", "stop")
    agent_url(tf_repo, "a")  # starts it again
    new(tf_repo, "c", "--from", "a")
    for name in ("a", "c"):
        r = record(tf_repo, name)
        with admin_conn(r) as conn:
            live = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in ("listen_addresses", "port", "hba_file")}
            assert conn.execute("SHOW unix_socket_directories").fetchone() == ("",)
        assert live == {
            "listen_addresses": ",".join(loopbacks()),  # 127.0.0.1, and ::1 where the machine has it (finding 4)
            "port": str(r["port"]),
            "hba_file": str(data_dir(r) / "pg_hba.conf"),
        }
    child_auto = data_dir(record(tf_repo, "c")) / "postgresql.auto.conf"
    assert not child_auto.exists() or "listen_addresses" not in child_auto.read_text()  # not inherited
    doctor = json.loads(run_tf(tf_repo, "doctor", "--json", check=False).out)
    (check,) = [c for c in doctor["checks"] if c["name"] == "cluster settings"]
    assert check["level"] == "ok", check


def test_finding_6_doctor_names_a_cluster_running_with_other_settings(tf_repo: Path) -> None:
    """A cluster started without treefork's command line (by hand, or by an older treefork) is reported."""
    from treefork.backends.local.cluster import pg

    new(tf_repo, "a")
    rec = record(tf_repo, "a")
    with admin_conn(rec) as conn:
        conn.execute("ALTER SYSTEM SET password_encryption = 'md5'")
    run_tf(tf_repo, "server", "stop")
    log = str(data_dir(rec).parent / "server.log")
    pg("pg_ctl", "-D", str(data_dir(rec)), "-l", log, "-s", "-w", "start")  # postgresql.auto.conf wins here
    doctor = json.loads(run_tf(tf_repo, "doctor", "--json", check=False).out)
    (check,) = [c for c in doctor["checks"] if c["name"] == "cluster settings"]
    assert check["level"] == "fail" and "password_encryption" in check["message"], check
    run_tf(tf_repo, "server", "stop")
    run_tf(tf_repo, "server", "start")
    doctor = json.loads(run_tf(tf_repo, "doctor", "--json", check=False).out)
    (check,) = [c for c in doctor["checks"] if c["name"] == "cluster settings"]
    assert check["level"] == "ok", check


# ---- 7. a home others can write to is refused ------------------------------------------------------------
@pytest.mark.parametrize("where", ["home", "pristine", "clusters"])
def test_finding_7_a_home_others_can_write_to_is_refused(repo: Path, tmp_path: Path, where: str) -> None:
    shared = tmp_path / "sharedtf"
    shared.mkdir(mode=0o700)
    weak = shared if where == "home" else shared / where
    weak.mkdir(exist_ok=True)
    weak.chmod(0o1777)  # e.g. TREEFORK_HOME=/tmp/tf on a shared CI machine, or a umask of 000
    r = run_tf(repo, "init", "--no-import", env={"TREEFORK_HOME": str(shared)}, check=False)
    assert r.rc == 1
    assert_one_line_error(r.err, str(weak), "writable by other users", f"chmod go-w {weak}")
    assert not (shared / "clusters").exists() or not list((shared / "clusters").iterdir())
    assert not list(shared.glob("pristine/*"))  # nothing made from, or into, it


def test_finding_29_a_home_and_a_registry_made_under_umask_000_are_closed_to_others(repo: Path) -> None:
    """The home, clusters/, pristine/ and .git/treefork are made writable by no one else, whatever the umask."""
    import shutil
    import tempfile

    fresh = Path(tempfile.mkdtemp(dir=home().parent)) / "tf"  # beside the test's home
    fresh.parent.chmod(0o755)  # as root, the server user passes through it
    env = {"TREEFORK_HOME": str(fresh)}
    old_umask = os.umask(0)
    try:
        run_tf(repo, "init", "--no-import", env=env)
        for path in (fresh, fresh / "clusters", fresh / "pristine", repo / ".git" / "treefork"):
            assert path.stat().st_mode & 0o022 == 0, (path, oct(path.stat().st_mode))
        run_tf(repo, "ls", env=env)  # and it passes its own check on the next command
    finally:
        os.umask(old_umask)
        run_tf(repo, "server", "stop", env=env, check=False)
        shutil.rmtree(fresh.parent, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user takes root")
def test_finding_7_a_record_that_is_not_treeforks_own_is_not_trusted(tf_repo: Path) -> None:
    import pwd

    new(tf_repo, "a")
    rec = record(tf_repo, "a")
    nobody = pwd.getpwnam("nobody")
    os.chown(home() / "clusters" / rec["id"] / "cluster.json", nobody.pw_uid, nobody.pw_gid)
    r = run_tf(tf_repo, "url", "a", check=False)
    assert r.rc != 0 and rec["role_password"] not in r.out + r.err


def test_finding_36_a_home_inside_the_repository_is_refused(repo: Path) -> None:
    r = run_tf(repo, "init", "--no-import", env={"TREEFORK_HOME": "tfrel"}, check=False)  # relative: in the repo
    assert r.rc == 1
    assert_one_line_error(r.err, "is inside the repository", "outside the repository")
    assert not (repo / "tfrel").exists() and not (repo / ".git" / "treefork").exists()  # nothing half-made


def test_treefork_s_own_random_passwords_have_verifiers_of_few_rounds_and_a_users_keep_the_default(
    tf_repo: Path,
) -> None:
    """Every login pays the verifier's PBKDF2 rounds on both sides; treefork's own passwords are 144 random bits,
    which no number of guesses reaches, so theirs have few (privileges.SCRAM_ITERATIONS). A password someone
    sets by hand in a cluster keeps PostgreSQL's default of 4096."""
    from treefork.backends.local.privileges import SCRAM_ITERATIONS

    new(tf_repo, "a")
    for name in ("<root>", "a"):
        rec = cluster_of(tf_repo, name)
        assert rec is not None
        with admin_conn(rec) as conn:
            rounds = {
                str(r): int(str(v).split("$")[1].split(":")[0])
                for r, v in conn.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL")
            }
            assert rounds == {"postgres": SCRAM_ITERATIONS, rec["role"]: SCRAM_ITERATIONS}, (name, rounds)
            conn.execute("CREATE ROLE by_hand LOGIN PASSWORD 'hunter2'")
            row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'by_hand'").fetchone()
            assert row is not None and str(row[0]).startswith("SCRAM-SHA-256$4096:")
            conn.execute("DROP ROLE by_hand")
    assert SCRAM_ITERATIONS < 4096
