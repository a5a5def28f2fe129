"""The catalog signature (backends/catalog_signature.py) against pg_dump: the same object keys for every kind of
object, and only content counts (TRUNCATE, VACUUM FULL, ANALYZE and rows are no change). Real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import psycopg

from conftest import run_tf
from testing.older_server import older_server
from treefork.backends import catalog_signature, schema_changes, schema_diff

EVERY_KIND = [
    "CREATE SCHEMA app",
    'CREATE EXTENSION IF NOT EXISTS "uuid-ossp"',
    "CREATE TYPE mood AS ENUM ('ok', 'sad')",
    "CREATE TYPE pair AS (a int, b text)",
    "CREATE TYPE span AS RANGE (subtype = int4)",
    "CREATE DOMAIN posint AS int CHECK (VALUE > 0)",
    "CREATE SEQUENCE counter",
    "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL DEFAULT 'x', n int GENERATED ALWAYS AS IDENTITY,"
    " m mood, twice int GENERATED ALWAYS AS (n * 2) STORED, score posint, CHECK (email <> ''))",
    "CREATE TABLE app.orders (id bigint PRIMARY KEY, user_id int REFERENCES users (id) ON DELETE CASCADE,"
    " c bigint DEFAULT nextval('counter'), UNIQUE (user_id, c), EXCLUDE USING btree (c WITH =))",
    "ALTER TABLE app.orders ADD CONSTRAINT positive CHECK (id > 0) NOT VALID",
    "CREATE UNIQUE INDEX users_email_idx ON users (lower(email))",
    "CREATE VIEW v AS SELECT id, email FROM users",
    "CREATE MATERIALIZED VIEW mv AS SELECT id FROM users",
    "CREATE INDEX mv_idx ON mv (id)",
    "CREATE FUNCTION shout(t text, n int DEFAULT 1) RETURNS text LANGUAGE sql AS $$ SELECT repeat(upper(t), n) $$",
    "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "CREATE PROCEDURE tidy(a mood) LANGUAGE sql AS $$ SELECT 1 $$",
    "CREATE AGGREGATE total(int) (sfunc = int4pl, stype = int)",
    "CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION app.touch()",
    "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY mine ON users USING (id > 0)",
    "CREATE RULE quiet AS ON INSERT TO v DO INSTEAD NOTHING",
    "CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at)",
    "CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
    "CREATE INDEX events_at ON events (at)",
]


def _sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)  # type: ignore[arg-type]


def test_the_keys_are_pg_dumps_for_every_kind_of_object(tf_server_repo: Path) -> None:
    url = run_tf(tf_server_repo, "url", "root").out.strip()
    _sql(url, *EVERY_KIND)
    dumped = set(schema_diff.objects(schema_diff.dump(url)))
    signed = set(catalog_signature.of_url(url))
    assert signed == dumped, (sorted(signed - dumped), sorted(dumped - signed))
    kinds = {schema_changes.kind_of(key) for key in signed}
    assert kinds >= {"table", "column default", "constraint", "index", "sequence", "view", "materialized view",
                     "function", "trigger", "type", "extension", "policy", "rule", "schema"}, kinds  # fmt: skip


def test_only_content_counts_not_rows_or_storage(tf_server_repo: Path) -> None:
    url = run_tf(tf_server_repo, "url", "root").out.strip()
    _sql(url, *EVERY_KIND)
    before = catalog_signature.of_url(url)
    _sql(
        url,
        "INSERT INTO users (email, m) SELECT 'u' || i, 'ok' FROM generate_series(1, 50) i",
        "SELECT nextval('counter')",
        "REFRESH MATERIALIZED VIEW mv",
        "ANALYZE",
        "TRUNCATE users CASCADE",
        "VACUUM FULL",
        "CLUSTER app.orders USING orders_pkey",
        "REINDEX TABLE users",
    )
    assert catalog_signature.of_url(url) == before
    _sql(url, "ALTER INDEX mv_idx SET (fillfactor = 50)", "CREATE OR REPLACE VIEW v AS SELECT id, email, m FROM users")
    assert catalog_signature.changed(before, catalog_signature.of_url(url)) == ["INDEX public.mv_idx", "VIEW public.v"]


def test_a_query_for_some_kinds_gives_exactly_their_part_of_the_whole(tf_server_repo: Path) -> None:
    url = run_tf(tf_server_repo, "url", "root").out.strip()
    _sql(url, *EVERY_KIND)
    whole = catalog_signature.of_url(url)
    for prefix in {catalog_signature.prefix_of(key) for key in whole}:
        only = catalog_signature.of_url(url, prefixes=frozenset({prefix}))
        mine = {k: v for k, v in only.items() if catalog_signature.prefix_of(k) == prefix}
        assert mine == {k: v for k, v in whole.items() if catalog_signature.prefix_of(k) == prefix}, prefix
        assert len(only) < len(whole)


def test_the_keys_are_pg_dumps_on_postgresql_15_too() -> None:
    """A server the user runs (`init --server-url`) may be older: the same query, the same keys."""
    with older_server(15) as server:
        with server.admin() as conn:
            conn.execute("CREATE DATABASE every_kind")
        url = server.url("every_kind")
        _sql(url, *EVERY_KIND)
        dumped = set(schema_diff.objects(schema_diff.dump(url)))
        signed = set(catalog_signature.of_url(url))
        assert signed == dumped, (sorted(signed - dumped), sorted(dumped - signed))
