"""The compatibility extensions (uuid-ossp, pgcrypto in SQL and PL/pgSQL) on the embedded PostgreSQL: a
workspace's own role, without superuser, creates them; their outputs match independent references (Python's
uuid, hashlib and hmac); a fork keeps them; a dump of a database that uses them imports; and an extension
no workspace can have is a one-line error at init."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import PgServer, run_tf
from testing.cli import assert_one_line_error, new
from testing.repo import registry
from testing.server import admin_conn, cluster_of, home

NAMESPACES = [uuid.NAMESPACE_DNS, uuid.NAMESPACE_URL, uuid.NAMESPACE_OID, uuid.NAMESPACE_X500]
# The name follows the namespace's 16 bytes: 39/40 bytes make the message end either side of where the
# length no longer fits in the first block (55/56 bytes), 47/48 either side of one full block; >100 bytes
# take two or three blocks.
NAMES = ["", "a", "www.example.com", "ünïcödé ✓ 日本語", "x" * 39, "x" * 40, "y" * 47, "y" * 48, "z" * 55]
NAMES += ["z" * 56, "w" * 103, "w" * 104, "é" * 90, "long name " * 30]
DIGESTS = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
LENGTHS = [0, 1, 3, 55, 56, 63, 64, 65, 111, 112, 119, 120, 127, 128, 129, 200, 1000]

# Every function of contrib/uuid-ossp 1.1 and pgcrypto 1.4, and only those: its result and labels (volatility,
# strict, parallel) by signature.
REAL_FUNCTIONS = {
    "uuid_generate_v1()": ("uuid", "v", True, "s"),
    "uuid_generate_v1mc()": ("uuid", "v", True, "s"),
    "uuid_generate_v3(uuid,text)": ("uuid", "i", True, "s"),
    "uuid_generate_v4()": ("uuid", "v", True, "s"),
    "uuid_generate_v5(uuid,text)": ("uuid", "i", True, "s"),
    "uuid_nil()": ("uuid", "i", True, "s"),
    "uuid_ns_dns()": ("uuid", "i", True, "s"),
    "uuid_ns_oid()": ("uuid", "i", True, "s"),
    "uuid_ns_url()": ("uuid", "i", True, "s"),
    "uuid_ns_x500()": ("uuid", "i", True, "s"),
    "armor(bytea)": ("text", "i", True, "s"),
    "armor(bytea,text[],text[])": ("text", "i", True, "s"),
    "crypt(text,text)": ("text", "i", True, "s"),
    "dearmor(text)": ("bytea", "i", True, "s"),
    "decrypt(bytea,bytea,text)": ("bytea", "i", True, "s"),
    "decrypt_iv(bytea,bytea,bytea,text)": ("bytea", "i", True, "s"),
    "digest(bytea,text)": ("bytea", "i", True, "s"),
    "digest(text,text)": ("bytea", "i", True, "s"),
    "encrypt(bytea,bytea,text)": ("bytea", "i", True, "s"),
    "encrypt_iv(bytea,bytea,bytea,text)": ("bytea", "i", True, "s"),
    "fips_mode()": ("boolean", "v", True, "s"),
    "gen_random_bytes(integer)": ("bytea", "v", True, "s"),
    "gen_random_uuid()": ("uuid", "v", False, "s"),
    "gen_salt(text)": ("text", "v", True, "s"),
    "gen_salt(text,integer)": ("text", "v", True, "s"),
    "hmac(bytea,bytea,text)": ("bytea", "i", True, "s"),
    "hmac(text,text,text)": ("bytea", "i", True, "s"),
    "pgp_armor_headers(text)": ("SETOF record", "i", True, "s"),
    "pgp_key_id(bytea)": ("text", "i", True, "s"),
    "pgp_pub_decrypt(bytea,bytea)": ("text", "i", True, "s"),
    "pgp_pub_decrypt(bytea,bytea,text)": ("text", "i", True, "s"),
    "pgp_pub_decrypt(bytea,bytea,text,text)": ("text", "i", True, "s"),
    "pgp_pub_decrypt_bytea(bytea,bytea)": ("bytea", "i", True, "s"),
    "pgp_pub_decrypt_bytea(bytea,bytea,text)": ("bytea", "i", True, "s"),
    "pgp_pub_decrypt_bytea(bytea,bytea,text,text)": ("bytea", "i", True, "s"),
    "pgp_pub_encrypt(text,bytea)": ("bytea", "v", True, "s"),
    "pgp_pub_encrypt(text,bytea,text)": ("bytea", "v", True, "s"),
    "pgp_pub_encrypt_bytea(bytea,bytea)": ("bytea", "v", True, "s"),
    "pgp_pub_encrypt_bytea(bytea,bytea,text)": ("bytea", "v", True, "s"),
    "pgp_sym_decrypt(bytea,text)": ("text", "i", True, "s"),
    "pgp_sym_decrypt(bytea,text,text)": ("text", "i", True, "s"),
    "pgp_sym_decrypt_bytea(bytea,text)": ("bytea", "i", True, "s"),
    "pgp_sym_decrypt_bytea(bytea,text,text)": ("bytea", "i", True, "s"),
    "pgp_sym_encrypt(text,text)": ("bytea", "v", True, "s"),
    "pgp_sym_encrypt(text,text,text)": ("bytea", "v", True, "s"),
    "pgp_sym_encrypt_bytea(bytea,text)": ("bytea", "v", True, "s"),
    "pgp_sym_encrypt_bytea(bytea,text,text)": ("bytea", "v", True, "s"),
}


def _cluster_dirs() -> set[str]:
    clusters = home() / "clusters"
    return set(os.listdir(clusters)) if clusters.is_dir() else set()


def _workspace_url(repo: Path, name: str | None = None) -> str:
    return run_tf(repo, "url", *([name] if name else [])).out.strip()


def _without_superuser(repo: Path) -> None:
    """The workspace role as a plain database owner (what it will be: superuser is being taken away)."""
    rec = cluster_of(repo, "<root>")
    assert rec is not None
    with admin_conn(rec) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(rec["role"])))


def _with_extensions(repo: Path) -> psycopg.Connection[Any]:
    _without_superuser(repo)
    conn = psycopg.connect(_workspace_url(repo), autocommit=True)
    assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
    conn.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    conn.execute("CREATE EXTENSION pgcrypto")
    return conn


def _one(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row[0]


def test_the_workspace_role_creates_both_at_their_real_versions_and_labels(tf_repo: Path) -> None:
    with _with_extensions(tf_repo) as conn:
        versions = dict(conn.execute("SELECT extname, extversion FROM pg_extension").fetchall())
        assert versions["uuid-ossp"] == "1.1" and versions["pgcrypto"] == "1.4"
        members = conn.execute(
            "SELECT CASE WHEN classid = 'pg_proc'::regclass THEN objid::regprocedure::text"
            " ELSE pg_describe_object(classid, objid, objsubid) END FROM pg_depend WHERE deptype = 'e'"
            " AND refobjid IN (SELECT oid FROM pg_extension WHERE extname IN ('uuid-ossp', 'pgcrypto'))"
        ).fetchall()
        assert sorted(m.removeprefix("public.") for (m,) in members) == sorted(REAL_FUNCTIONS)
        for signature, expected in REAL_FUNCTIONS.items():
            labels = conn.execute(
                "SELECT pg_get_function_result(oid), provolatile, proisstrict, proparallel FROM pg_proc"
                " WHERE oid = %s::regprocedure",
                (f"public.{signature}",),
            ).fetchone()
            assert labels == expected, signature
        conn.execute("DROP EXTENSION pgcrypto")
        conn.execute('CREATE SCHEMA "odd Schema"')  # as apps that keep extensions in a schema of their own
        conn.execute("CREATE EXTENSION pgcrypto SCHEMA \"odd Schema\" VERSION '1.3'")
        assert _one(conn, "SELECT extversion FROM pg_extension WHERE extname = 'pgcrypto'") == "1.3"
        conn.execute("ALTER EXTENSION pgcrypto UPDATE")
        conn.execute("SET search_path = pg_catalog")  # each function finds the others without the search path
        assert _one(conn, 'SELECT "odd Schema".fips_mode()') is False
        expected = hmac.new(b"key", b"data", "sha1").digest()
        assert _one(conn, """SELECT "odd Schema".hmac('data'::text, 'key', 'sha1')""") == expected
        name = uuid.uuid5(uuid.NAMESPACE_DNS, "example.com")
        assert _one(conn, "SELECT public.uuid_generate_v5(public.uuid_ns_dns(), 'example.com')") == name


def test_outputs_match_pythons_uuid_hashlib_and_hmac(tf_repo: Path) -> None:
    with _with_extensions(tf_repo) as conn:
        for ns in [*NAMESPACES, uuid.UUID("0f4a1b9e-6a3c-4e55-9a3e-2b1f7f1d9c11")]:
            for name in NAMES:
                assert _one(conn, "SELECT uuid_generate_v3(%s, %s)", ns, name) == uuid.uuid3(ns, name), name
                assert _one(conn, "SELECT uuid_generate_v5(%s, %s)", ns, name) == uuid.uuid5(ns, name), name
        ns_functions = "SELECT uuid_ns_dns(), uuid_ns_url(), uuid_ns_oid(), uuid_ns_x500(), uuid_nil()"
        assert conn.execute(ns_functions).fetchone() == (*NAMESPACES, uuid.UUID(int=0))

        for n in LENGTHS:
            data = os.urandom(n)
            for algorithm in DIGESTS:
                expected = hashlib.new(algorithm, data).digest()
                assert _one(conn, "SELECT digest(%s::bytea, %s)", data, algorithm) == expected, (algorithm, n)
        text = "ünïcödé ✓ " * 9
        for algorithm in DIGESTS:
            expected = hashlib.new(algorithm, text.encode()).digest()
            assert _one(conn, "SELECT digest(%s::text, upper(%s))", text, algorithm) == expected, algorithm

        for key_length in [0, 1, 20, 63, 64, 65, 127, 128, 129, 300]:
            key = os.urandom(key_length)
            for n in [0, 1, 64, 129, 500]:
                data = os.urandom(n)
                for algorithm in DIGESTS:
                    expected = hmac.new(key, data, algorithm).digest()
                    got = _one(conn, "SELECT hmac(%s::bytea, %s::bytea, %s)", data, key, algorithm)
                    assert got == expected, (algorithm, key_length, n)
        expected = hmac.new("clé".encode(), text.encode(), "sha256").digest()
        assert _one(conn, "SELECT hmac(%s::text, %s::text, 'sha256')", text, "clé") == expected

        with pytest.raises(psycopg.errors.ExternalRoutineInvocationException, match='Cannot use "sha3-256"'):
            conn.execute("SELECT digest('x'::bytea, 'sha3-256')")


def test_random_uuids_carry_their_version_and_variant_and_random_bytes_do_not_repeat(tf_repo: Path) -> None:
    with _with_extensions(tf_repo) as conn:
        before = _one(conn, "SELECT clock_timestamp()")
        v1s, v1mcs = conn.execute(
            "SELECT array_agg(uuid_generate_v1()), array_agg(uuid_generate_v1mc()) FROM generate_series(1, 500)"
        ).fetchone()
        after = _one(conn, "SELECT clock_timestamp()")
        gregorian = 0x01B21DD213814000  # 1582-10-15 to 1970-01-01, in 100 ns steps
        for u, node_bits in [(u, 0x01) for u in v1s] + [(u, 0x03) for u in v1mcs]:
            assert u.version == 1 and u.variant == uuid.RFC_4122
            assert (u.node >> 40) & node_bits == node_bits, "a random node has the multicast bit"
            micros = (u.time - gregorian) // 10
            assert before.timestamp() * 1e6 - 1 <= micros <= after.timestamp() * 1e6 + 1
        assert len(set(v1s) | set(v1mcs)) == 1000
        v4s = _one(conn, "SELECT array_agg(uuid_generate_v4()) FROM generate_series(1, 500)")
        v4s += _one(conn, "SELECT array_agg(public.gen_random_uuid()) FROM generate_series(1, 500)")
        assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in v4s) and len(set(v4s)) == 1000

        for n in [1, 13, 14, 15, 28, 1024]:
            assert len(_one(conn, "SELECT gen_random_bytes(%s)", n)) == n
        samples = _one(conn, "SELECT array_agg(gen_random_bytes(28)) FROM generate_series(1, 200)")
        assert len(set(samples)) == 200
        for position in range(28):  # no byte of a UUID's version or variant leaks in
            assert len({s[position] >> 4 for s in samples}) > 8 and len({s[position] >> 6 for s in samples}) == 4
        for n in [0, 1025]:
            with pytest.raises(psycopg.errors.ExternalRoutineInvocationException, match="Length not in range"):
                conn.execute("SELECT gen_random_bytes(%s)", (n,))


def test_what_the_compatibility_pgcrypto_lacks_is_a_one_line_error_naming_the_fix(tf_repo: Path) -> None:
    with _with_extensions(tf_repo) as conn:
        for call in ["crypt('pw', '$1$salt')", "gen_salt('bf')", "pgp_sym_encrypt('a', 'k')", "armor('x')"]:
            with pytest.raises(psycopg.errors.FeatureNotSupported) as raised:
                conn.execute(f"SELECT {call}")
            message = raised.value.diag.message_primary or ""
            assert "\n" not in message.strip() and "docs/extensions.md" in message and "--server-url" in message
            assert call.split("(")[0] + "()" in message


def test_a_fork_keeps_the_extensions_working(tf_repo: Path) -> None:
    with _with_extensions(tf_repo) as conn:
        conn.execute(
            "CREATE TABLE users (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), email text,"
            " key uuid GENERATED ALWAYS AS (uuid_generate_v5(uuid_ns_url(), email)) STORED,"
            " fingerprint bytea GENERATED ALWAYS AS (digest(email, 'sha1')) STORED)"
        )
        conn.execute("INSERT INTO users (email) VALUES ('root@example.com')")
    new(tf_repo, "feature")
    with psycopg.connect(_workspace_url(tf_repo, "feature"), autocommit=True) as conn:
        conn.execute("INSERT INTO users (email) VALUES ('fork@example.com')")
        rows = conn.execute("SELECT id, email, key, fingerprint FROM users ORDER BY email").fetchall()
        assert [r[1] for r in rows] == ["fork@example.com", "root@example.com"]
        for id_, email, key, fingerprint in rows:
            assert id_.version == 4
            assert key == uuid.uuid5(uuid.NAMESPACE_URL, email)
            assert bytes(fingerprint) == hashlib.sha1(email.encode()).digest()
        assert _one(conn, "SELECT encode(gen_random_bytes(4), 'hex')") != _one(
            conn, "SELECT encode(gen_random_bytes(4), 'hex')"
        )


def test_a_dev_database_using_them_is_imported_by_init(tf_repo: Path, tmp_path: Path) -> None:
    """pg_dump | pg_restore of a database that uses both (a default, generated columns, a view naming a function
    the compatibility pgcrypto lacks) into a new root, whose role has no superuser either."""
    with _with_extensions(tf_repo) as conn:
        conn.execute(
            "CREATE TABLE users (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), email text,"
            " token bytea GENERATED ALWAYS AS (hmac(email, 'secret', 'sha1')) STORED)"
        )
        conn.execute("INSERT INTO users (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 3) g")
        conn.execute("CREATE VIEW hashed AS SELECT email, crypt(email, 'salt') AS hash FROM users")
    from conftest import make_repo

    other = make_repo(tmp_path / "other")
    (other / ".env").write_text(f"DATABASE_URL={_workspace_url(tf_repo)}\n")
    run_tf(other, "init")
    with psycopg.connect(_workspace_url(other), autocommit=True) as conn:
        assert dict(conn.execute("SELECT extname, extversion FROM pg_extension").fetchall()) == {
            "plpgsql": "1.0",
            "uuid-ossp": "1.1",
            "pgcrypto": "1.4",
        }
        rows = conn.execute("SELECT id, email, token FROM users ORDER BY email").fetchall()
        assert len(rows) == 3
        for id_, email, token in rows:
            assert id_.version == 4 and bytes(token) == hmac.new(b"secret", email.encode(), "sha1").digest()
        conn.execute("INSERT INTO users (email) VALUES ('new@example.com')")
        assert _one(conn, "SELECT count(*) FROM users") == 4
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="crypt"):
            conn.execute("SELECT * FROM hashed")


def test_an_extension_no_workspace_can_have_is_a_one_line_error_at_init(
    repo: Path, pg_server: PgServer, tmp_path: Path
) -> None:
    """The dev database uses an extension the embedded PostgreSQL lacks (as PostGIS would be): init says which,
    and how to go on, in one line, and leaves no root behind."""
    share = home() / f"test-extension-{tmp_path.name}"
    (share / "extension").mkdir(parents=True)
    (share / "extension" / "tf_elsewhere.control").write_text("default_version = '1.0'\nrelocatable = true\n")
    (share / "extension" / "tf_elsewhere--1.0.sql").write_text(
        "CREATE FUNCTION tf_elsewhere() RETURNS int AS 'SELECT 1' LANGUAGE sql;\n"
    )
    for d, _, files in os.walk(share):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    source = f"extsrc_{tmp_path.name[-12:].lower().replace('-', '_')}"
    try:
        with psycopg.connect(pg_server.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(source)))
        with psycopg.connect(pg_server.url(source), autocommit=True) as conn:
            conn.execute(
                "SELECT set_config('extension_control_path', current_setting('extension_control_path') || ':' || %s,"
                " false)",
                (str(share),),
            )
            conn.execute("CREATE EXTENSION tf_elsewhere")
            conn.execute("CREATE EXTENSION pgcrypto")
            conn.execute("CREATE TABLE t (id int)")
        (repo / ".env").write_text(f"DATABASE_URL={pg_server.url(source)}\n")
        clusters_before = _cluster_dirs()
        r = run_tf(repo, "init", check=False)
        assert r.rc != 0
        assert_one_line_error(r.err, 'extension "tf_elsewhere"', "--no-import", "--server-url")
        assert pg_server.password not in r.text
        registry_file = repo / ".git" / "treefork" / "registry.json"
        assert not registry_file.exists() or registry(repo)["root_db_branch"] is None
        assert (repo / ".env").read_text() == f"DATABASE_URL={pg_server.url(source)}\n", "the env file is untouched"
        assert _cluster_dirs() == clusters_before, "no half-made root"
    finally:
        with psycopg.connect(pg_server.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(source)))
        shutil.rmtree(share, ignore_errors=True)
