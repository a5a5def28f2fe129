"""What changed between two schemas, object by object and by kind: the tables, columns, indexes, constraints,
sequences, views, functions, triggers, types, extensions and policies that `diff --json` names, and that
collisions are found on.

An object is what pg_dump prints under one `-- Name: ...; Type: ...` header, keyed 'TYPE schema.name'
(`schema_diff.objects`). A changed table also names each column it added, dropped or altered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ADDED, REMOVED, CHANGED = "added", "removed", "changed"

# pg_dump's object types -> the kind a user reads; anything else is its pg_dump type in lower case
_KINDS = {
    "TABLE": "table",
    "TABLE ATTACH": "table",
    "VIEW": "view",
    "MATERIALIZED VIEW": "materialized view",
    "INDEX": "index",
    "INDEX ATTACH": "index",
    "CONSTRAINT": "constraint",
    "FK CONSTRAINT": "constraint",
    "CHECK CONSTRAINT": "constraint",
    "SEQUENCE": "sequence",
    "SEQUENCE OWNED BY": "sequence",
    "SEQUENCE SET": "sequence",
    "DEFAULT": "column default",
    "FUNCTION": "function",
    "PROCEDURE": "function",
    "AGGREGATE": "function",
    "TRIGGER": "trigger",
    "EVENT TRIGGER": "trigger",
    "TYPE": "type",
    "DOMAIN": "type",
    "EXTENSION": "extension",
    "POLICY": "policy",
    "ROW SECURITY": "policy",
    "SCHEMA": "schema",
    "RULE": "rule",
}
_COLUMN = re.compile(r'^    (?P<name>"(?:[^"]|"")+"|[^\s"]+) (?P<definition>.+?),?$')
_NOT_COLUMNS = ("CONSTRAINT ", "CHECK ", "PRIMARY KEY", "UNIQUE ", "FOREIGN KEY", "EXCLUDE ", "LIKE ")


@dataclass(frozen=True)
class Change:
    """One object that differs: its kind ('index'), its name ('public.users_email_idx'), what happened to it
    (added, removed or changed), and the object key it belongs to ('INDEX public.users_email_idx'; a
    column's is its table's)."""

    kind: str
    name: str
    change: str
    key: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "change": self.change}


def kind_of(key: str) -> str:
    """'FK CONSTRAINT public.a a_b_fkey' -> 'constraint'; the longest pg_dump type that prefixes the key."""
    for pg_type in sorted(_KINDS, key=len, reverse=True):
        if key.startswith(pg_type + " "):
            return _KINDS[pg_type]
    return key.split(" ", 1)[0].lower()


def name_of(key: str) -> str:
    for pg_type in sorted(_KINDS, key=len, reverse=True):
        if key.startswith(pg_type + " "):
            return key[len(pg_type) + 1 :]
    return key.split(" ", 1)[-1]


def between(base: dict[str, str], branch: dict[str, str]) -> list[Change]:
    """Every object (and table column) that differs, base -> branch, in key order."""
    out: list[Change] = []
    for key in sorted(set(base) | set(branch)):
        before, after = base.get(key), branch.get(key)
        if before == after:
            continue
        change = ADDED if before is None else REMOVED if after is None else CHANGED
        parts = _part_changes(key, before or "", after or "") if change == CHANGED and kind_of(key) == "table" else []
        out += parts or [_change(key, after or before or "", change)]  # a table's columns say it, when they can
    return out


def _change(key: str, sql: str, change: str) -> Change:
    kind = kind_of(key)
    if kind == "type" and " AS ENUM" in sql:
        kind = "enum"
    return Change(kind, name_of(key), change, key)


def keys_named(keys: list[str]) -> list[Change]:
    """Changes known only by their object keys (a backend's whole-dump diff, e.g. Neon's): each one 'changed'."""
    return [_change(key, "", CHANGED) for key in keys]


def _part_changes(key: str, before: str, after: str) -> list[Change]:
    """A changed table's columns and inline constraints (pg_dump prints CHECKs inside CREATE TABLE); empty when
    the change is elsewhere (its options, its partitioning), and the table itself is then the change."""
    table = name_of(key)
    old, new = _parts(before), _parts(after)
    out = []
    for kind, part in sorted(set(old) | set(new)):
        if old.get((kind, part)) != new.get((kind, part)):
            change = ADDED if (kind, part) not in old else REMOVED if (kind, part) not in new else CHANGED
            out.append(Change(kind, f"{table}.{part}" if kind == "column" else f"{table} {part}", change, key))
    rest_before = [line for line in before.splitlines() if not line.startswith("    ")]
    rest_after = [line for line in after.splitlines() if not line.startswith("    ")]
    return out if rest_before == rest_after else []


def _parts(table_sql: str) -> dict[tuple[str, str], str]:
    """A CREATE TABLE's columns and named constraints: (kind, name) -> definition."""
    out: dict[tuple[str, str], str] = {}
    inside = False
    for line in table_sql.splitlines():
        if line.startswith("CREATE ") and " TABLE " in line:
            inside = True
            continue
        if inside and line.startswith(")"):
            break
        m = _COLUMN.match(line) if inside else None
        if m is None:
            continue
        if m.group("name") == "CONSTRAINT":
            name, _, definition = m.group("definition").partition(" ")
            out[("constraint", name)] = definition
        elif not line[4:].upper().startswith(_NOT_COLUMNS):
            out[("column", m.group("name"))] = m.group("definition")
    return out
