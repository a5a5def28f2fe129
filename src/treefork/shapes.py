"""Every record a command prints with `--json`, in one place: its fields and what each means (docs/json.md is
generated from this module, and tests/test_json_shapes.py runs every command against it).

The conventions, the same in every record:
- `schema_version` first: it changes when a field is renamed, removed or changes meaning (adding a field
  does not change it);
- `name` is always the workspace's name (`root` for the main worktree), never a database or cluster id;
- `parent` is always the other side: the workspace a workspace was forked from, merges into, is diffed and
  reset against (`reset --from` names another);
- times are ISO 8601 in UTC (`2026-12-06T05:30:00Z`), or null;
- a value that cannot be known is null; no record holds a password, except `url`'s, which is the URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SCHEMA_VERSION = 2  # 1: before the records had one home (other-side fields called base, into and source)


@dataclass(frozen=True)
class Shape:
    """One record: which commands print it, and its fields in order with their meanings."""

    printed_by: str
    fields: Mapping[str, str]


WORKSPACE: dict[str, str] = {
    "name": "the workspace name (`root` for the main worktree)",
    "is_root": "true for the root",
    "branch": "its git branch (null when detached)",
    "parent": "the parent workspace (`root`), null for the root",
    "forked_from": "the workspace it was really forked from, once that one was removed (`parent` then names the "
    "nearest live ancestor), else null",
    "path": "the worktree's path (where git says it is, after a `git worktree move`)",
    "status": "`ready`, `creating`, `unprovisioned` or `removing`",
    "error": "the last error, or null",
    "worktree": "`present`, `missing` or `prunable`",
    "origin": "who made it: `new`, `post-checkout`, `claude`, `sync` (an agent's session-start hook, or by hand) or "
    "`adopted` (a worktree whose provisioning failed, recorded for `sync`); null for the root",
    "ahead": "commits on the branch that the parent's HEAD lacks (null if unknown)",
    "behind": "commits on the parent's HEAD that the branch lacks (null if unknown)",
    "dirty": "uncommitted or untracked changes (ignored files do not count)",
    "backend": "`local` or `neon`",
    "db_branch": "the database branch's name",
    "db_id": "the database branch's backend id",
    "clone_method": "`clone`, `copy`, `empty`, `import`, `logical` (a busy parent on `--server-url`) or `neon`",
    "server": "`host:port` of the database, from the env file's URL (no credentials)",
    "server_state": "`running`, `stopped` or `port taken` for a local workspace's own PostgreSQL cluster (`missing` "
    "if its record is gone); null on Neon",
    "disk_bytes": "disk the worktree's files take (allocated blocks, each inode once)",
    "db_disk_bytes": "disk the workspace's own PostgreSQL cluster really adds: its extents no other file shares (on "
    "reflink, what it wrote since the fork; elsewhere every block); null on Neon. The table's `disk` column is the "
    "sum of the two",
    "ports": "`{VARIABLE: port}`",
    "agent": "`running`, `exited`, `none` (no session), `no-tmux`; null for the root",
    "created_at": "when the workspace was created",
    "expires_at": "Neon TTL, or null",
    "code_base": "the commit the workspace's worktree started from: its parent's HEAD, whose data its database was "
    "forked from, unless another base was asked for (`new --base`, Claude's `worktree.baseRef`); null for the root "
    "and for workspaces made before treefork recorded it",
    "data_ahead_of_code": "true when the worktree's code, as it is now, still lacks the commit its parent was at when "
    "the database was forked (the data may hold a migration this code does not know); null when unknown",
    "collisions": "`ls`: this workspace's collisions with others (docs/lifecycle.md); null for the root and in "
    "`new`/`sync --json`",
}

SHAPES: dict[str, Shape] = {
    "workspace": Shape("`ls --json` (a list of them; `ls NAME --json`: one)", WORKSPACE),
    "new": Shape(
        "`new --json`, `sync --json` (a workspace, and these)",
        {
            **WORKSPACE,
            "env_file": "the env file treefork wrote in the worktree",
            "seconds": "`new`: how long it took; null for `sync`",
            "existed": "`new`: the workspace was there already (a re-run); null for `sync`",
        },
    ),
    "url": Shape(
        "`url --json`",
        {
            "name": "the workspace",
            "url": "its DATABASE_URL (with its password: the one record that holds one)",
            "direct_url": "the unpooled URL (Neon), else the same",
        },
    ),
    "init": Shape(
        "`init --json` (a first init and a re-run alike)",
        {
            "backend": "`local` or `neon`",
            "repo_id": "this repository's treefork id",
            "root_db_branch": "the root's database branch",
            "root_clone_method": "how the root was made: `empty`, `import` or `neon`",
            "imported_from": "the database copied into the root, without its password; null if none",
            "already_initialised": "true on a re-run, which changes nothing but `--overwrite-env`",
            "env": "what happened to the main worktree's env file, in words; null if nothing",
        },
    ),
    "removal": Shape(
        "`rm --json` (a list, one per name)",
        {
            "name": "the workspace",
            "db_dropped": "its database branch was dropped",
            "worktree_removed": "its worktree was removed",
            "branch_deleted": "its git branch was deleted",
            "branch_kept_reason": "why the branch was kept, or null",
            "error": "why this one was not removed (the others went on), or null",
        },
    ),
    "gc": Shape(
        "`gc --json`",
        {
            "dry_run": "nothing was done, only listed",
            "actions": "what gc did (or would do): a list of `gc action`",
        },
    ),
    "gc action": Shape(
        "`gc --json`'s `actions`, `doctor --json`'s orphans",
        {
            "name": "the workspace the branch was made for",
            "db_branch": "the database branch, or null",
            "db_id": "its backend id, or null",
            "action": "`drop` (its worktree is gone), `forget` (no database to drop) or `collect` (what a killed "
            "command left: a half-made or half-removed branch)",
            "reason": "why, in words",
            "done": "it was done (false on `--dry-run`, or when it turned out to be in use)",
        },
    ),
    "diff": Shape(
        "`diff NAME --json` (`diff --all --json`: a list of them)",
        {
            "name": "the workspace",
            "parent": "its parent workspace",
            "against": "what it is compared with: `fork point` (its schema as forked, or last reset) or `parent` "
            "(the parent's current schema: `--against-parent`, or no fork point recorded)",
            "note": "why the comparison is not what was asked, or null",
            "changed": "there is a difference (the exit code is then 4)",
            "objects": "every changed schema object, as `kind name`",
            "changes": "each changed object: `{kind, name, change}`",
            "tables": "the tables among them",
            "diff": "the unified diff of the schema",
            "collisions": "`--all`: this workspace's collisions with others; null otherwise",
        },
    ),
    "merge": Shape(
        "`merge --json`",
        {
            "name": "the workspace merged",
            "parent": "the workspace it was merged into",
            "parent_branch": "the parent's git branch",
            "head_before": "the parent's commit before the merge",
            "head_after": "the parent's commit after it",
            "migrated": "the `migrate` command ran on the parent's database",
            "removed": "the workspace was removed after (not with `--keep`)",
            "warnings": "collisions and other warnings, in words",
        },
    ),
    "merge abort": Shape(
        "`merge --abort --json`",
        {
            "name": "the workspace whose merge was interrupted",
            "outcome": "`undone` (code and database as before the merge) or `completed` (the parent was migrated: "
            "the merge was finished instead)",
        },
    ),
    "reset": Shape(
        "`reset --json`",
        {
            "name": "the workspace reset",
            "parent": "the workspace whose current data it now has: its parent, or `--from`'s",
            "db_branch": "its database branch (the same as before: its URL is unchanged)",
        },
    ),
    "doctor": Shape(
        "`doctor --json`",
        {
            "ok": "no check failed (the exit code is 4 when one did)",
            "fixed": "with `--fix`: the fixes carried out, in words",
            "checks": "a list of `doctor check`",
        },
    ),
    "doctor check": Shape(
        "`doctor --json`'s `checks`",
        {
            "name": "what was checked",
            "level": "`ok`, `warn` or `fail`",
            "message": "what was found",
            "hint": "the command that fixes it, or null",
            "data": "the details, per check (names, paths), or null",
        },
    ),
    "server status": Shape(
        "`server status --json`",
        {
            "home": "the treefork home whose clusters these are",
            "clusters": "a list of `cluster`",
        },
    ),
    "server prune": Shape(
        "`server prune --json`",
        {
            "home": "the treefork home",
            "dry_run": "nothing was removed, only listed",
            "removed": "the clusters removed (or that would be): a list of `cluster`, each with a `repository` field "
            "(`gone` or `re-initialised`)",
            "unknown": "clusters whose repository is not recorded (made by an older treefork): kept without `--force`",
        },
    ),
    "cluster": Shape(
        "`server status --json`'s `clusters`",
        {
            "id": "the cluster's directory name under the home",
            "repo_id": "the treefork id of its repository",
            "repo_dir": "its repository's git directory, or null (an older record)",
            "name": "the workspace it serves, as `treefork ls` names it (`root` for the root)",
            "parent": "the workspace it was forked from, as `ls` names it; null for a root",
            "port": "its loopback port",
            "dbname": "the database the workspace's URL names",
            "role": "the role the workspace's URL logs in as",
            "method": "how it was made: `clone`, `copy`, `empty` or `import`",
            "status": "`ready`, `creating` or `removing`",
            "created_at": "when it was made",
            "running": "its postmaster runs",
            "pid": "the postmaster's pid, or null",
            "data_dir": "its data directory",
            "log_file": "its server log",
        },
    ),
    "autostart": Shape("`server autostart --json`", {"unit": "the systemd user unit written"}),
    "install action": Shape(
        "`install --json` and `uninstall --json` (a list, one per hook or file)",
        {
            "hook": "the git hook, or the agent's hook or setup file",
            "path": "the file written, changed or removed",
            "action": "what was done to it, in words (`installed`, `unchanged`, `removed`, `kept as legacy …`)",
        },
    ),
}


def when(seconds: float | None) -> str | None:
    """A Unix time as the records give times: ISO 8601, UTC, to the second."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def record(kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """values as the `kind` record: schema_version first, then exactly its fields in order. A field missing or
    one too many is a bug here, not the reader's problem."""
    fields = SHAPES[kind].fields
    if set(values) != set(fields):
        raise AssertionError(
            f"{kind} record: missing {sorted(set(fields) - set(values))}, extra {sorted(set(values) - set(fields))}"
        )
    return {"schema_version": SCHEMA_VERSION, **{k: values[k] for k in fields}}
