"""Migration files that two branches add and that will collide once both are merged, read from git before any
merge: each workspace's additions (`git diff --diff-filter=A parent...branch`) and what its parent gained since
it branched (`branch...parent`: a sibling merged meanwhile).

Two added files collide when they claim the same place in their framework's order:
- Django `<app>/migrations/NNNN_name.py`: the same number in the same folder (two leaf nodes);
- Alembic: two revisions with the same `down_revision` (two heads), found in the files' own text;
- Flyway `V<n>__name.sql`, Rails `db/migrate/<timestamp>_name.rb`, and numbered files (`NNN_name.sql`,
  golang-migrate's `.up.sql`/`.down.sql`, knex's `.js`) in a `migrations`/`migrate` folder or one listed in
  treefork.toml's `migration_dirs`: the same number or timestamp in the same folder;
- Prisma `prisma/migrations/<timestamp>_name/`: the same folder name.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from treefork import proc
from treefork.git import git, no_git_env

FIXES = {
    "django": "after merging one, run `python manage.py makemigrations --merge` in the other (or renumber it)",
    "alembic": "after merging one, run `alembic merge heads` in the other (or point its down_revision at the first)",
    "flyway": "renumber one of them to the next free version",
    "rails": "give one of them a new timestamp (rename the file and its version)",
    "prisma": "rename one of the two folders (`prisma migrate dev` makes a new one)",
    "numbered": "renumber one of them to the next free number",
}
_PRISMA = re.compile(r"^(?P<folder>(?:.*/)?prisma/migrations)/(?P<key>\d+_[^/]+)/migration\.sql$")
_RAILS = re.compile(r"^(?P<folder>(?:.*/)?db/migrate)/(?P<key>\d+)_[^/]+\.rb$")
_FLYWAY = re.compile(r"^(?P<folder>(?:.*/)?)V(?P<key>\d+(?:[._]\d+)*)__[^/]+\.sql$")
_DJANGO = re.compile(r"^(?P<folder>(?:.*/)?migrations)/(?P<key>\d{4})_[^/]+\.py$")
_NUMBERED = re.compile(r"^(?P<folder>(?:.*/)?(?:migrations|migrate|migration))/(?P<key>\d+)[_-][^/]+$")
_ALEMBIC_DIR = re.compile(r"(?:^|/)versions/[^/]+\.py$")
_REVISION = re.compile(r"^revision\s*(?::[^=]+)?=\s*['\"](?P<rev>[^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*(?::[^=]+)?=\s*(?P<value>.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Added:
    """A migration file one side adds, and the place it claims: (framework, folder, key)."""

    side: str  # a workspace, or its parent's name for what the parent gained since that workspace branched
    path: str
    framework: str
    folder: str
    key: str  # the number, timestamp or folder name; for Alembic the down_revision

    @property
    def place(self) -> tuple[str, str, str]:
        return self.framework, self.folder, self.key


@dataclass(frozen=True)
class Lineage:
    """One workspace's branch and the ref it merges into (its parent's branch, or the main worktree's HEAD)."""

    workspace: str
    parent: str
    branch: str
    base: str


def added_files(lineages: Iterable[Lineage], main_root: Path, *, extra_dirs: tuple[str, ...]) -> list[Added]:
    """What every workspace adds, and what each one's parent gained since it branched. A handful of git
    processes whatever the number of workspaces: one listing of the branches, one `for-each-ref --contains`
    per parent (a parent that did not move since a branch forked gained nothing), a `merge-base` for each
    branch whose parent moved, and one `diff-tree --stdin` for every pair."""
    lineages = list(lineages)
    if not lineages:
        return []
    heads = _heads(main_root)
    jobs: list[tuple[str, str, str]] = []  # (side, commit, the merge-base it is compared with)
    for lin, since in zip(lineages, _merge_bases(main_root, lineages, heads), strict=True):
        branch, base = heads.get(lin.branch), heads.get(lin.base, lin.base)
        if branch is None or since is None:
            continue
        jobs.append((lin.workspace, branch, since))
        if since != base:
            jobs.append((lin.parent, base, since))
    paths = _added_paths(main_root, [(commit, since) for _, commit, since in jobs])
    found: list[Added] = []
    for (side, commit, _), added in zip(jobs, paths, strict=True):
        found += _classify_all(side, commit, added, main_root, extra_dirs)
    return list(dict.fromkeys(found))  # two siblings see the same parent additions once


def _heads(main_root: Path) -> dict[str, str]:
    """'refs/heads/x' -> its commit, for every branch: one process."""
    r = git("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", cwd=main_root, check=False)
    return {ref: sha for sha, _, ref in (line.partition(" ") for line in r.out.splitlines())}


def _merge_bases(main_root: Path, lineages: list[Lineage], heads: dict[str, str]) -> list[str | None]:
    """Each branch's fork point from its parent: the parent's commit itself when the branch contains it."""
    containing: dict[str, set[str]] = {}
    for base in {heads.get(lin.base, lin.base) for lin in lineages}:
        r = git("for-each-ref", "--contains", base, "--format=%(refname)", "refs/heads/", cwd=main_root, check=False)
        containing[base] = set(r.out.split()) if r.rc == 0 else set()
    out: list[str | None] = []
    for lin in lineages:
        base = heads.get(lin.base, lin.base)
        if lin.branch in containing[base]:
            out.append(base)
            continue
        r = git("merge-base", base, lin.branch, cwd=main_root, check=False)
        out.append(r.out.strip() if r.rc == 0 and r.out.strip() else None)
    return out


def _added_paths(main_root: Path, pairs: list[tuple[str, str]]) -> list[list[str]]:
    """For each (commit, since): the files commit has that since had not. One `git diff-tree --stdin`: a line
    '<commit> <since>' compares them, and --always heads each answer with the commit, empty or not."""
    if not pairs:
        return []
    stdin = "".join(f"{commit} {since}\n" for commit, since in pairs)
    r = proc.run(
        "git", "diff-tree", "--stdin", "--always", "-r", "--no-renames", "--name-only", "-z", "--diff-filter=A",
        cwd=main_root, env=no_git_env(), input=stdin, check=False,
    )  # fmt: skip
    tokens = r.out.split("\0") if r.rc == 0 else []
    out: list[list[str]] = [[] for _ in pairs]
    i = -1
    for token in tokens:
        if i + 1 < len(pairs) and token == pairs[i + 1][0]:
            i += 1
        elif token and i >= 0:
            out[i].append(token)
    return out


def clashes(files: list[Added]) -> list[tuple[Added, Added]]:
    """Pairs of files from two different sides that claim the same place (never the same file twice)."""
    by_place: dict[tuple[str, str, str], list[Added]] = {}
    for f in files:
        by_place.setdefault(f.place, []).append(f)
    out = []
    for group in by_place.values():
        for i, a in enumerate(group):
            out += [(a, b) for b in group[i + 1 :] if a.side != b.side and a.path != b.path]
    return out


def _classify_all(side: str, ref: str, paths: list[str], main_root: Path, extra_dirs: tuple[str, ...]) -> list[Added]:
    out: list[Added] = []
    for path in paths:
        if path.endswith(".py") and (_ALEMBIC_DIR.search(path) or _in(path, extra_dirs)):
            alembic = _alembic(side, path, functools.partial(_show, main_root, ref, path))
            if alembic:
                out += alembic
                continue
        found = _classify(side, path, extra_dirs)
        if found is not None:
            out.append(found)
    return out


def _classify(side: str, path: str, extra_dirs: tuple[str, ...]) -> Added | None:
    for framework, pattern in (
        ("prisma", _PRISMA),
        ("rails", _RAILS),
        ("flyway", _FLYWAY),
        ("django", _DJANGO),
        ("numbered", _NUMBERED),
    ):
        m = pattern.match(path)
        if m:
            return Added(side, path, framework, m.group("folder").rstrip("/"), _number(m.group("key")))
    if _in(path, extra_dirs):
        m = re.match(r"^(\d+)[_-]", PurePosixPath(path).name)
        if m:
            return Added(side, path, "numbered", str(PurePosixPath(path).parent), _number(m.group(1)))
    return None


def _number(key: str) -> str:
    """'0002' and '002' are the same place; a name (Prisma's folder) or a dotted version stays as it is."""
    return str(int(key)) if key.isdigit() else key


def _in(path: str, dirs: tuple[str, ...]) -> bool:
    return str(PurePosixPath(path).parent) in {d.strip("/") for d in dirs}


def _alembic(side: str, path: str, read: Callable[[], str]) -> list[Added]:
    """One Added per down_revision a revision file names (a merge revision names several)."""
    text = read()
    if not _REVISION.search(text):
        return []
    down = _DOWN.search(text)
    parents = re.findall(r"['\"]([^'\"]+)['\"]", down.group("value")) if down else []
    folder = str(PurePosixPath(path).parent)
    return [Added(side, path, "alembic", folder, p) for p in parents or ["<base>"]]


def _show(main_root: Path, ref: str, path: str) -> str:
    r = git("show", f"{ref}:{path}", cwd=main_root, check=False)
    return r.out if r.rc == 0 else ""
