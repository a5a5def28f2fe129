"""A database's schema as a catalog signature: one query that returns `{object key: md5 of its definition}` for
every user object, in the keys `schema_diff.objects` gives pg_dump's objects ('TABLE public.users',
'INDEX public.users_email_idx', 'CONSTRAINT public.users users_pkey', 'FUNCTION public.shout(text)', ...).

One connection and one catalog query where pg_dump is a process and its own queries: measured on a server
backend that just started, about 20-30 ms for every kind and 8 ms for tables alone (`query(prefixes)`), plus the
login, against pg_dump's 55-65 ms. Enough to tell which objects a workspace changed since its fork point, which
is all collisions need. What changed, line by line, stays pg_dump's (`treefork diff NAME`).

Only content is hashed: names, types, expressions and definitions as PostgreSQL prints them (search_path empty,
so names print qualified as pg_dump's do), never a transaction id or a file node, so TRUNCATE, VACUUM FULL,
ANALYZE or new rows change nothing. What pg_dump leaves out is left out: the system schemas, extension members,
the built-in extensions, owners, privileges and comments. The database may be an agent's: its names are only
strings here, hashed and compared, and printed escaped by whoever prints them.
"""

from __future__ import annotations

# The catalog rows every part reads from: `user_ns`, every namespace pg_dump dumps; `ext`, every extension member.
HEAD = r"""
WITH user_ns AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
),
ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
rels AS (
    SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.relforcerowsecurity, c.relrowsecurity, c.reloptions,
           c.relispartition, c.relpartbound, n.nspname FROM pg_class c JOIN user_ns n ON n.oid = c.relnamespace
    WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
),
-- a default that uses a sequence the table itself owns (serial): pg_dump prints it apart, as DEFAULT
apart AS (
    SELECT ad.oid FROM pg_attrdef ad
    JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid AND d.refclassid = 'pg_class'::regclass
    JOIN pg_depend o ON o.classid = 'pg_class'::regclass AND o.objid = d.refobjid AND o.deptype = 'a'
                    AND o.refobjid = ad.adrelid
)
"""

# Each part yields (key, definition) for the key prefixes it names.
PARTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("TABLE",),
        r"""
    SELECT 'TABLE ' || c.nspname || '.' || c.relname AS key,
        concat_ws(E'\n', c.relkind, c.relpersistence, c.relforcerowsecurity, c.reloptions::text,
            pg_get_partkeydef(c.oid),
            (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                    || concat(' ', a.attnotnull, a.attidentity, a.attgenerated)
                    || coalesce(' collate ' || NULLIF(a.attcollation, t.typcollation)::regcollation::text, '')
                    || coalesce(' default ' || (SELECT pg_get_expr(ad.adbin, ad.adrelid) FROM pg_attrdef ad
                        WHERE ad.adrelid = c.oid AND ad.adnum = a.attnum AND ad.oid NOT IN (SELECT oid FROM apart)), ''),
                    E'\n' ORDER BY a.attnum)
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
            (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), E'\n' ORDER BY k.conname)
             FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype IN ('c', 'n') AND k.convalidated),
            (SELECT string_agg(p.relname, ',' ORDER BY i.inhseqno) FROM pg_inherits i
             JOIN pg_class p ON p.oid = i.inhparent WHERE i.inhrelid = c.oid)) AS def
    FROM rels c WHERE c.relkind IN ('r', 'p')
""",
    ),
    (
        ("TABLE ATTACH",),
        r"""
    SELECT 'TABLE ATTACH ' || c.nspname || '.' || c.relname, pg_get_expr(c.relpartbound, c.oid)
    FROM rels c WHERE c.relkind IN ('r', 'p') AND c.relispartition
""",
    ),
    (
        ("DEFAULT",),
        r"""
    SELECT 'DEFAULT ' || c.nspname || '.' || c.relname || ' ' || a.attname, pg_get_expr(ad.adbin, ad.adrelid)
    FROM pg_attrdef ad JOIN rels c ON c.oid = ad.adrelid
    JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
    WHERE ad.oid IN (SELECT oid FROM apart)
""",
    ),
    (
        ("FK CONSTRAINT", "CHECK CONSTRAINT", "CONSTRAINT"),
        r"""
    SELECT CASE k.contype WHEN 'f' THEN 'FK CONSTRAINT ' WHEN 'c' THEN 'CHECK CONSTRAINT ' ELSE 'CONSTRAINT ' END
           || c.nspname || '.' || c.relname || ' ' || k.conname,
           pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN rels c ON c.oid = k.conrelid
    WHERE k.conparentid = 0 AND k.conislocal
      AND (k.contype IN ('p', 'u', 'f', 'x') OR (k.contype = 'c' AND NOT k.convalidated))
""",
    ),
    (
        ("INDEX",),
        r"""
    SELECT 'INDEX ' || c.nspname || '.' || c.relname, pg_get_indexdef(c.oid)
    FROM rels c JOIN pg_index x ON x.indexrelid = c.oid
    WHERE c.relkind IN ('i', 'I')
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid AND k.contype IN ('p', 'u', 'x'))
""",
    ),
    (
        ("INDEX ATTACH",),
        r"""
    SELECT 'INDEX ATTACH ' || c.nspname || '.' || c.relname, p.relname
    FROM rels c JOIN pg_inherits i ON i.inhrelid = c.oid JOIN pg_class p ON p.oid = i.inhparent
    WHERE c.relkind IN ('i', 'I')
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid AND k.contype IN ('p', 'u', 'x'))
""",
    ),
    (
        ("SEQUENCE",),
        r"""
    SELECT 'SEQUENCE ' || c.nspname || '.' || c.relname,
        concat_ws(' ', format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache,
            s.seqcycle, c.relpersistence,
            (SELECT t.relname || '.' || a.attname FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
             JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i'))
    FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
""",
    ),
    (
        ("SEQUENCE OWNED BY",),
        r"""
    SELECT 'SEQUENCE OWNED BY ' || c.nspname || '.' || c.relname, t.relname || '.' || a.attname
    FROM rels c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
    JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE c.relkind = 'S'
""",
    ),
    (
        ("VIEW", "MATERIALIZED VIEW"),
        r"""
    SELECT CASE c.relkind WHEN 'v' THEN 'VIEW ' ELSE 'MATERIALIZED VIEW ' END || c.nspname || '.' || c.relname,
        concat_ws(E'\n', c.reloptions::text, pg_get_viewdef(c.oid))
    FROM rels c WHERE c.relkind IN ('v', 'm')
""",
    ),
    (
        ("TRIGGER",),
        r"""
    SELECT 'TRIGGER ' || c.nspname || '.' || c.relname || ' ' || g.tgname, concat(g.tgenabled, pg_get_triggerdef(g.oid))
    FROM pg_trigger g JOIN rels c ON c.oid = g.tgrelid
    WHERE NOT g.tgisinternal AND g.tgparentid = 0
""",
    ),
    (
        ("POLICY",),
        r"""
    SELECT 'POLICY ' || c.nspname || '.' || c.relname || ' ' || p.polname,
        concat_ws(E'\n', p.polcmd, p.polpermissive, p.polroles::regrole[]::text,
            pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p JOIN rels c ON c.oid = p.polrelid
""",
    ),
    (
        ("ROW SECURITY",),
        r"""
    SELECT 'ROW SECURITY ' || c.nspname || '.' || c.relname, 'on' FROM rels c WHERE c.relrowsecurity
""",
    ),
    (
        ("RULE",),
        r"""
    SELECT 'RULE ' || c.nspname || '.' || c.relname || ' ' || r.rulename, pg_get_ruledef(r.oid)
    FROM pg_rewrite r JOIN rels c ON c.oid = r.ev_class WHERE r.rulename <> '_RETURN'
""",
    ),
    (
        ("PROCEDURE", "AGGREGATE", "FUNCTION"),
        r"""
    SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE ' WHEN 'a' THEN 'AGGREGATE ' ELSE 'FUNCTION ' END
           || n.nspname || '.' || p.proname || '('
           || coalesce(CASE WHEN p.prokind = 'a' AND p.pronargs = 0 THEN '*' END,
                       (SELECT string_agg(format_type(t, NULL), ', ' ORDER BY i)
                        FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS u(t, i)), '')
           || ')',
        CASE WHEN p.prokind = 'a' THEN (SELECT a::text FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
             ELSE pg_get_functiondef(p.oid) END
    FROM pg_proc p JOIN user_ns n ON n.oid = p.pronamespace
    WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                      AND d.deptype IN ('e', 'i'))  -- a member, or a range type's own constructor
""",
    ),
    (
        ("DOMAIN", "TYPE"),
        r"""
    SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN ' ELSE 'TYPE ' END || n.nspname || '.' || t.typname,
        concat_ws(E'\n', t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
            (SELECT string_agg(e.enumlabel, E'\n' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
            (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod), E'\n'
                    ORDER BY a.attnum)
             FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
            (SELECT string_agg(k.conname || ' ' || pg_get_constraintdef(k.oid), E'\n' ORDER BY k.conname)
             FROM pg_constraint k WHERE k.contypid = t.oid),
            (SELECT r::text FROM pg_range r WHERE r.rngtypid = t.oid))
    FROM pg_type t JOIN user_ns n ON n.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd', 'r')
           OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c'))
      AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_type'::regclass AND ext.objid = t.oid)
""",
    ),
    (
        ("EXTENSION",),
        r"""
    SELECT 'EXTENSION ' || x.extname, concat_ws(' ', x.extversion, n.nspname)
    FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
    WHERE x.oid >= 16384  -- the built-in ones (plpgsql) are initdb's, not the database's
""",
    ),
    (
        ("SCHEMA",),
        r"""
    SELECT 'SCHEMA ' || n.nspname, n.nspname FROM user_ns n
    WHERE n.nspname <> 'public'
      AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_namespace'::regclass AND ext.objid = n.oid)
""",
    ),
)


def query(prefixes: frozenset[str] | None = None) -> str:
    """The signature query; with `prefixes`, only the parts that yield keys of those kinds ('TABLE', 'INDEX'):
    a smaller query, which a server backend that just started parses and plans in a fraction of the time."""
    wanted = [sql for names, sql in PARTS if prefixes is None or prefixes & set(names)]
    if not wanted:
        return "SELECT NULL::text, NULL::text WHERE false"
    return (
        f"{HEAD},\nparts (key, def) AS (\n{'  UNION ALL'.join(wanted)})\nSELECT key, md5(coalesce(def, '')) FROM parts"
    )


def prefix_of(key: str) -> str:
    """'TABLE ATTACH public.t' -> 'TABLE ATTACH': the longest key prefix a part names ('' for none)."""
    return max((name for names, _ in PARTS for name in names if key.startswith(name + " ")), key=len, default="")


def of_url(url: str, *, prefixes: frozenset[str] | None = None) -> dict[str, str]:
    """The signature of the database at url (a libpq URL, as `Backend.schema_url_or_none` gives); with
    `prefixes`, of the objects of those kinds only (`query`)."""
    from treefork.backends.local import libpq

    # the URL's own require_auth (the local backend's admin URL requires SCRAM); a server the user runs, its own way
    with libpq.connect_url(url, require_auth=None, application_name="treefork-signature") as conn:
        conn.execute("SET search_path = ''")  # names print schema-qualified, as in pg_dump's output
        return {str(key): str(digest) for key, digest in conn.execute(query(prefixes))}


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The keys of the objects added, removed or changed, in key order."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
