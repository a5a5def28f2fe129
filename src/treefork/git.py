"""Typed git queries and operations, all through proc.run."""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from treefork import proc
from treefork.errors import FatalError, ProcError

ZERO_SHA = "0" * 40
MIN_GIT = (2, 28)


def no_git_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without GIT_DIR and friends, so git finds the repo from cwd (as pre-commit does)."""
    env = dict(os.environ if base is None else base)
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_OBJECT_DIRECTORY"):
        env.pop(key, None)
    return env


# Set while treefork itself changes worktrees and branches: the git hooks it installed then stand down in the
# shell, without starting Python to find out that the workspace is treefork's own work in progress.
IN_PROGRESS_ENV = "TREEFORK_IN_PROGRESS"


def git(*args: str, cwd: Path, check: bool = True, own_change: bool = False) -> proc.Result:
    env = no_git_env()
    if own_change:
        env[IN_PROGRESS_ENV] = "1"
    return proc.run("git", *args, cwd=cwd, env=env, check=check)


@dataclass(frozen=True)
class Worktree:
    path: Path
    head: str | None
    branch: str | None  # short name, None when detached
    bare: bool = False
    prunable: bool = False
    locked: bool = False
    admin_id: str | None = None  # git's own identity: .git/worktrees/<admin_id>; None for the main worktree


@dataclass(frozen=True)
class Repo:
    """A git repository seen from one of its worktrees."""

    cwd: Path
    toplevel: Path  # this worktree's root
    git_dir: Path
    common_dir: Path

    @classmethod
    def discover(cls, cwd: Path | None = None) -> Repo:
        cwd = (cwd or Path.cwd()).absolute()
        if has_control_chars(str(cwd)):  # git's answer is one path a line: a newline in it would cut it short
            raise FatalError(
                f"the path {str(cwd)!r} contains a control character (a newline?); treefork cannot work there",
                hint="move the worktree to a plain path: git worktree move '<that path>' ../plain-name",
            )
        r = git(
            "rev-parse",
            "--is-bare-repository",
            "--show-toplevel",
            "--absolute-git-dir",
            "--git-common-dir",
            cwd=cwd,
            check=False,
        )
        lines = r.out.splitlines()
        if r.rc != 0 or len(lines) < 4:
            check_version()  # an old git is the likelier cause of an odd answer; say so if it is
        if r.rc != 0 and lines[:1] != ["true"]:
            raise FatalError(
                f"{cwd} is not inside a git repository", hint="cd into your project, or run `git init` first"
            )
        if lines[0] == "true" or len(lines) < 4:
            raise FatalError(
                "this is a bare repository's git dir; treefork runs in a worktree",
                hint="cd into the worktree of its default branch (git worktree list shows them), or add one: git worktree add ../main main",
            )
        toplevel, git_dir, common = Path(lines[1]), Path(lines[2]), Path(lines[3])
        if not common.is_absolute():
            common = (cwd / common).resolve()
        repo = cls(cwd=cwd, toplevel=toplevel, git_dir=git_dir, common_dir=common.resolve())
        if repo.common_dir.name != ".git":
            repo._expect_supported_layout()  # only unusual layouts pay for this check
        return repo

    def from_main_root(self) -> Repo:
        """The repository as `discover(main_root)` sees it. When this already is the main worktree, git would
        answer with the same toplevel, git dir and common dir, so no second process asks."""
        if self.is_linked_worktree:
            return Repo.discover(self.main_root)
        return replace(self, cwd=self.main_root)

    def _expect_supported_layout(self) -> None:
        """Refuse the layouts treefork does not support yet, before it writes anything in the wrong place."""
        if git("rev-parse", "--show-superproject-working-tree", cwd=self.toplevel, check=False).out.strip():
            raise FatalError(
                f"{self.toplevel} is a git submodule; treefork does not support submodules",
                hint="run treefork in the superproject, or clone the submodule's repository on its own",
            )
        _ = self.main_root  # a bare repository without a worktree on its default branch stops here

    @property
    def is_linked_worktree(self) -> bool:
        """Any worktree but the root workspace's (in a bare repository's layout, every worktree is linked
        in git's sense, and the root is the one on the default branch)."""
        return self.toplevel.resolve() != self.main_root.resolve()

    @functools.cached_property
    def main_root(self) -> Path:
        """The main worktree's root: the first entry of `git worktree list`. git computes that entry as the
        real path of the common dir without its trailing `/.git` (worktree.c, get_main_worktree), so when
        the common dir is a `.git` treefork does the same and spares a process."""
        if self.common_dir.name == ".git":
            return self.common_dir.parent
        trees = self.worktrees()
        return self._root_of_bare(trees) if trees[0].bare else trees[0].path

    def _root_of_bare(self, trees: list[Worktree]) -> Path:
        """A bare repository with linked worktrees (`git clone --bare x x.git; git -C x.git worktree add
        ../main main`): the root workspace is the worktree on the repository's default branch (its HEAD)."""
        head = git("symbolic-ref", "-q", "HEAD", cwd=self.common_dir, check=False).out.strip()
        branch = head.removeprefix("refs/heads/") or "main"
        for tree in trees[1:]:
            if tree.branch == branch and not tree.prunable:
                return tree.path
        raise FatalError(
            f"{self.common_dir} is a bare repository, and no worktree has its default branch {branch} checked out; "
            "treefork uses that worktree as the root (main .env, root database)",
            hint=f"git -C {self.common_dir} worktree add ../{branch} {branch}  (or switch a worktree back to {branch})",
        )

    @property
    def name(self) -> str:
        return self.main_root.name

    def worktrees(self) -> list[Worktree]:
        """`git worktree list`, retrying the race it loses to a concurrent `git worktree add` (git 2.39 reads a
        half-made .git/worktrees/<name>/ and fails with 'commondir: Success')."""
        for attempt in range(6):
            r = git("worktree", "list", "--porcelain", "-z", cwd=self.toplevel, check=False)
            if r.rc == 0:
                return _with_admin_ids(_parse_worktrees(r.out), self.common_dir)
            if not _is_transient_worktree_race(r.err) or attempt == 5:
                raise ProcError(("git", "worktree", "list", "--porcelain"), r.rc, r.out, r.err)
            _jitter(0.01, 0.05)
        raise AssertionError("unreachable")

    def has_commits(self) -> bool:
        return git("rev-parse", "--verify", "-q", "HEAD", cwd=self.toplevel, check=False).rc == 0

    def branch_exists(self, branch: str) -> bool:
        return git("show-ref", "--verify", "-q", f"refs/heads/{branch}", cwd=self.toplevel, check=False).rc == 0

    def rev(self, ref: str) -> str | None:
        r = git("rev-parse", "--verify", "-q", f"{ref}^{{commit}}", cwd=self.toplevel, check=False)
        return r.out.strip() or None

    def head_of(self, path: Path) -> str | None:
        r = git("rev-parse", "--verify", "-q", "HEAD", cwd=path, check=False)
        return r.out.strip() or None

    def head_in(self, path: Path, listed: Mapping[Path, Worktree]) -> str | None:
        """head_of(path), read from a `worktrees()` listing keyed by resolved path (`git worktree list` prints
        every worktree's HEAD) instead of one process a worktree. A path the listing does not show with a
        commit (no worktree of this repository, a prunable entry, an unborn branch) is still asked of git, so
        the answer is head_of's in every case."""
        tree = listed.get(path.resolve())
        if tree is not None and not tree.prunable and tree.head and tree.head != ZERO_SHA:
            return tree.head
        return self.head_of(path)

    def current_branch(self, path: Path) -> str | None:
        r = git("symbolic-ref", "-q", "--short", "HEAD", cwd=path, check=False)
        return r.out.strip() or None

    def add_worktree(self, path: Path, branch: str, *, create_from: str | None) -> None:
        """`git worktree add`, retrying git's own race under parallel adds (git 2.39 'commondir: Success')."""
        args = ["worktree", "add"]
        args += ["-b", branch, str(path), create_from] if create_from else [str(path), branch]
        for attempt in range(6):
            r = git(*args, cwd=self.main_root, check=False, own_change=True)
            if r.rc == 0:
                return
            if not _is_transient_worktree_race(r.err) or attempt == 5:
                raise ProcError(("git", *args), r.rc, r.out, r.err)
            _cleanup_failed_add(self, path, branch, created=create_from is not None)
            _jitter(0.05, 0.2)

    def remove_worktree(self, path: Path, *, force: bool) -> None:
        git(
            "worktree",
            "remove",
            *(["--force", "--force"] if force else []),
            str(path),
            cwd=self.main_root,
            own_change=True,
        )

    def prune_worktrees(self) -> None:
        git("worktree", "prune", cwd=self.main_root, check=False)

    def is_dirty(self, path: Path) -> bool:
        """Uncommitted or untracked changes, ignoring files that git ignores."""
        r = git("status", "--porcelain", "--untracked-files=normal", cwd=path)
        return bool(r.out.strip())

    def is_ancestor(self, commit: str, *, of: str) -> bool:
        """commit is of, or one of its ancestors."""
        return git("merge-base", "--is-ancestor", commit, of, cwd=self.main_root, check=False).rc == 0

    def is_merged(self, branch: str, *, into: str) -> bool:
        r = git("merge-base", "--is-ancestor", f"refs/heads/{branch}", into, cwd=self.main_root, check=False)
        return r.rc == 0

    def delete_branch(self, branch: str) -> None:
        git("branch", "-D", branch, cwd=self.main_root, own_change=True)

    def is_ignored(self, path: Path, worktree: Path) -> bool:
        return git("check-ignore", "-q", "--no-index", str(path), cwd=worktree, check=False).rc == 0

    def add_exclude(self, pattern: str, *, why: str) -> None:
        """Append a pattern to the shared info/exclude (every worktree reads it), once."""
        exclude = self.common_dir / "info" / "exclude"
        text = exclude.read_text(encoding="utf-8") if exclude.exists() else ""
        if pattern in text.splitlines():
            return
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as f:
            f.write(("" if text.endswith("\n") or not text else "\n") + f"# added by treefork: {why}\n{pattern}\n")

    def admin_id_or_none(self, worktree: Path) -> str | None:
        """A linked worktree's admin dir id, from its `.git` file (`gitdir: <common>/worktrees/<id>`)."""
        try:
            line = (worktree / ".git").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        admin = Path(line.removeprefix("gitdir:").strip())
        return admin.name if line.startswith("gitdir:") and admin.parent.name == "worktrees" else None

    def remotes(self) -> list[str]:
        return git("remote", cwd=self.toplevel, check=False).out.split()

    def is_tracked(self, rel: str, worktree: Path) -> bool:
        return git("ls-files", "--error-unmatch", "--", rel, cwd=worktree, check=False).rc == 0


def _parse_worktrees(out: str) -> list[Worktree]:
    """`git worktree list --porcelain -z`: NUL-terminated fields, an empty field between records, so a
    newline in a path can neither corrupt a record nor inject a phantom one."""
    trees: list[Worktree] = []
    for record in out.split("\0\0"):
        fields = [f for f in record.split("\0") if f]
        if not fields or not fields[0].startswith("worktree "):
            continue
        attrs: dict[str, str] = {}
        for f in fields:
            key, _, value = f.partition(" ")
            attrs[key] = value
        branch = attrs.get("branch")
        trees.append(
            Worktree(
                path=Path(attrs["worktree"]),
                head=attrs.get("HEAD"),
                branch=branch.removeprefix("refs/heads/") if branch else None,
                bare="bare" in attrs,
                prunable="prunable" in attrs,
                locked="locked" in attrs,
            )
        )
    return trees


def _with_admin_ids(trees: list[Worktree], common_dir: Path) -> list[Worktree]:
    """Each linked worktree's admin dir id, read the way git links them: .git/worktrees/<id>/gitdir holds
    the path of <worktree>/.git. The id survives `git worktree move` and `git worktree repair`."""
    ids: dict[Path, str] = {}
    admin = common_dir / "worktrees"
    try:
        entries = list(admin.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        try:
            target = Path((entry / "gitdir").read_text(encoding="utf-8").strip())
        except (OSError, UnicodeDecodeError):
            continue
        ids[Path(os.path.normpath(target.parent))] = entry.name
    return [replace(t, admin_id=ids.get(Path(os.path.normpath(t.path)))) for t in trees]


def has_control_chars(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _jitter(base: float, spread: float) -> None:
    import random  # only git's races get here

    time.sleep(base + random.random() * spread)


def _is_transient_worktree_race(err: str) -> bool:
    return "commondir" in err or "gitdir" in err and "failed to read" in err or "could not lock" in err.lower()


def _cleanup_failed_add(repo: Repo, path: Path, branch: str, *, created: bool) -> None:
    """Undo what a failed parallel `git worktree add` left, so the retry starts clean."""
    repo.prune_worktrees()
    if path.exists() and not (path / ".git").exists():
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    if created and repo.branch_exists(branch):
        in_use = any(w.branch == branch for w in repo.worktrees())
        if not in_use:
            git("branch", "-D", branch, cwd=repo.main_root, check=False)


def check_version() -> None:
    """git 2.28 or newer. Checked by the commands that set a repo up (init, install, doctor) and when git
    answers oddly, not by every command: it is one more process on the path of `new`, whose cost is measured."""
    out = proc.run("git", "--version", hint="install git 2.28 or newer").out
    parts = out.split()[2].split(".") if len(out.split()) > 2 else []
    try:
        version = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        raise FatalError(
            f"cannot read the git version from {out.strip()!r}", hint="install git 2.28 or newer"
        ) from None
    if version < MIN_GIT:
        raise FatalError(
            f"git {'.'.join(parts)} is too old",
            hint="install git 2.28 or newer (treefork needs worktree --porcelain -z and reference-transaction)",
        )
