"""treefork's fix in the error of a `CREATE EXTENSION` the workspace's role cannot run: an event trigger.

The role is no superuser (privileges.py), so PostgreSQL refuses it an untrusted extension (PostGIS:
`permission denied to create extension`) or one its binaries lack (`extension "timescaledb" is not
available`), in words that do not say what to do here. Before either, an event trigger on
`ddl_command_start`, filtered to the tag `CREATE EXTENSION` (no other command calls it), raises one line
that does: list it in treefork.toml and run `treefork sync`, or run on a PostgreSQL that has it.

The trigger and its function are the admin's, made in the root's database and template1: every fork copies
them (no cost at fork time), a database the role makes (a test runner's) has them, and the role can neither
drop, alter nor bypass them (event triggers fire for every role; `session_replication_role` and
`event_triggers` are superuser settings). The function lives in pg_catalog, so no schema of the app holds
it and pg_dump leaves it out; it runs with `search_path = pg_catalog, pg_temp`, so nothing the role creates
runs in its place when the admin creates an extension (for a superuser it returns at once).

The extension's name comes from the statement's text (`current_query()`), which the role writes: it is only
ever compared as a value, never made into SQL. Comments are left out first. A text that names an extension
several times is checked for each; an extension already created, or trusted and available, lets the
command run as PostgreSQL would.
"""

from __future__ import annotations

from treefork.backends.local.binaries import Binaries
from treefork.backends.local.libpq import SQL, Connection, Literal

TRIGGER = "treefork_extension_guard"

_FUNCTION = """
DECLARE
  statement text;
  quoted text[];
  wanted text;
  default_version text;
  is_trusted boolean;
BEGIN
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user) THEN
    RETURN;
  END IF;
  statement := pg_catalog.regexp_replace(pg_catalog.current_query(), '/[*].*?[*]/', ' ', 'g');
  statement := pg_catalog.regexp_replace(statement, '--[^\\n]*', ' ', 'g');
  FOR quoted IN SELECT pg_catalog.regexp_matches(statement,
      'create\\s+extension\\s+(?:if\\s+not\\s+exists\\s+)?("(?:[^"]|"")+"|[[:alpha:]_][[:alnum:]_$]*)', 'gi')
  LOOP
    IF pg_catalog.left(quoted[1], 1) OPERATOR(pg_catalog.=) '"' THEN
      wanted := pg_catalog.replace(pg_catalog.substr(quoted[1], 2, pg_catalog.length(quoted[1]) - 2), '""', '"');
    ELSE
      wanted := pg_catalog.lower(quoted[1]);
    END IF;
    CONTINUE WHEN EXISTS (SELECT FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) wanted);
    SELECT a.default_version INTO default_version
      FROM pg_catalog.pg_available_extensions() a WHERE a.name OPERATOR(pg_catalog.=) wanted;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'undefined_file',
        MESSAGE = pg_catalog.format('extension "%s" is not available in %s: %s', wanted, {where}, {fix_missing}),
        HINT = 'docs/extensions.md (treefork) lists what each PostgreSQL has';
    END IF;
    SELECT v.trusted INTO is_trusted FROM pg_catalog.pg_available_extension_versions() v
      WHERE v.name OPERATOR(pg_catalog.=) wanted AND v.version OPERATOR(pg_catalog.=) default_version;
    IF NOT coalesce(is_trusted, false) THEN
      RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
        MESSAGE = pg_catalog.format('permission denied to create extension "%s": it needs a superuser, which this '
          'workspace''s role is not; add it to extensions in treefork.toml (extensions = ["%s"]) and run treefork sync',
          wanted, wanted),
        HINT = 'treefork creates it as its admin in the root, in every workspace and in template1 (docs/local-backend.md)';
    END IF;
  END LOOP;
END
"""


def install(conn: Connection, bins: Binaries) -> None:
    """The guard in the database conn is on (as the admin): the function made again (an older treefork's goes),
    the trigger made if it is missing. Idempotent."""
    if bins.embedded:
        where = f"PostgreSQL {bins.major} (the embedded one)"
        fix = (
            'install it on this machine and re-initialise with postgres = "<its major>" in treefork.toml, or branch '
            "on a server that has it (treefork init --server-url URL)"
        )
    else:
        where = f"PostgreSQL {bins.major} ({bins.bin_dir})"
        fix = f"install it for PostgreSQL {bins.major} (e.g. apt install postgresql-{bins.major}-NAME)"
    body = _FUNCTION.replace("{where}", _quoted(where)).replace("{fix_missing}", _quoted(fix))
    conn.execute(
        SQL.of(
            "CREATE OR REPLACE FUNCTION pg_catalog.treefork_extension_guard() RETURNS event_trigger LANGUAGE plpgsql "
            "SET search_path = pg_catalog, pg_temp AS {}",
            Literal(body),
        )
    )
    state = _state_or_none(conn)
    if state is None:
        conn.execute(
            f"CREATE EVENT TRIGGER {TRIGGER} ON ddl_command_start WHEN TAG IN ('CREATE EXTENSION') "
            "EXECUTE FUNCTION pg_catalog.treefork_extension_guard()"
        )
    elif state != "O":
        conn.execute(f"ALTER EVENT TRIGGER {TRIGGER} ENABLE")


def drop(conn: Connection) -> None:
    """The trigger gone (as the admin), before a restore whose dump has one of its own (a dev database that is a
    treefork cluster): install() makes it again after, the admin's."""
    conn.execute(f"DROP EVENT TRIGGER IF EXISTS {TRIGGER}")


def present(conn: Connection) -> bool:
    """The guard is there and fires for the role (an older treefork's root has none)."""
    return _state_or_none(conn) == "O"


def _state_or_none(conn: Connection) -> str | None:
    row = conn.one("SELECT evtenabled FROM pg_event_trigger WHERE evtname = $1", (TRIGGER,))
    return str(row[0]) if row is not None else None


def _quoted(text: str) -> str:
    """A PL/pgSQL string literal of our own text (a bin directory may hold a quote)."""
    return "'" + text.replace("'", "''") + "'"
