"""The Neon backend: each workspace gets a copy-on-write Neon branch with its own read_write compute.

Every branch treefork creates carries the annotation {treefork: "1", treefork_repo, treefork_workspace};
nothing without that mark is ever deleted. Passwords are never stored: they come from the create
response, or from `reveal_password` of the branch's own role (a protected parent gives children new ones).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from treefork.backends.base import NEON, ROOT_MARK, BackendContext, Connection, CreateOptions, DbBranch, ServedElsewhere
from treefork.backends.neon import conn as neon_conn
from treefork.backends.neon import lifecycle as neon_lifecycle
from treefork.backends.neon import ops as neon_ops
from treefork.backends.neon.api import NeonApi, NeonApiError
from treefork.backends.neon.auth import resolve_key
from treefork.background import Background
from treefork.errors import BackendError, FatalError
from treefork.state import CREATING

PLAN_LIMITS = "Free plan: 10 branches; Launch and Scale: 5,000"


class NeonBackend(ServedElsewhere):
    name = "neon"
    leaf_delete_only = True
    supports_ttl = True
    wakes_on_connect = True

    def __init__(self, ctx: BackendContext) -> None:
        self.ctx = ctx
        self.project_id = str(ctx.settings.get("project_id") or ctx.config.neon.get("project_id") or "")
        if not self.project_id:
            raise FatalError(
                "no Neon project id",
                hint="treefork init --backend neon --project-id <id>, or set project_id in the [neon] table of treefork.toml",
            )
        self._api: NeonApi | None = None
        self._branches: list[dict[str, Any]] | None = None  # the last full listing
        self._annotations: dict[str, dict[str, str]] = {}
        self._connections: dict[str, Connection] = {}
        self._api_job: Background[NeonApi] | None = None
        self._attempted: set[str] = set()  # workspaces this process sent a create for

    # ---- plumbing -------------------------------------------------------------------------------
    @property
    def api(self) -> NeonApi:
        if self._api_job is not None:
            job, self._api_job = self._api_job, None
            self._api = job.result()
        if self._api is None:
            self._api = self._new_api()
        return self._api

    def prepare(self) -> None:
        if self._api is None and self._api_job is None:  # importing httpx alone takes about 100 ms
            self._api_job = Background(self._new_api, name="neon-client")

    def _new_api(self) -> NeonApi:
        return NeonApi(resolve_key(self.ctx.main_root, self.ctx.config.env_file))

    @property
    def _base(self) -> str:
        return f"/projects/{self.project_id}"

    def _mine(self, annotation: dict[str, str] | None, workspace: str | None = None) -> bool:
        a = annotation or {}
        return (
            a.get("treefork") == "1"
            and a.get("treefork_repo") == self.ctx.repo_id
            and (workspace is None or a.get("treefork_workspace") == workspace)
        )

    # ---- lifecycle ------------------------------------------------------------------------------
    def ensure_ready(self) -> None:
        self._list_all()

    def root(self) -> DbBranch:
        rid, rname = self.ctx.settings.get("root_branch_id"), self.ctx.settings.get("root_branch_name")
        if not rid:
            default = next((b for b in self._list_all() if b.get("default")), None)
            if default is None:
                raise BackendError(
                    f"Neon project {self.project_id} has no default branch", hint="set one in the Neon console"
                )
            rid, rname = default["id"], default["name"]
        return DbBranch(name=str(rname), id=str(rid), workspace=ROOT_MARK, clone_method=NEON)

    def create_root(self, *, import_url: str | None) -> DbBranch:
        if import_url:
            raise FatalError(
                "--import is not supported by the neon backend",
                hint="import into the project's default branch with pg_restore, then run init without --import",
            )
        self.ctx.settings.pop("root_branch_id", None)
        root = self.root()
        self.ctx.change_settings(lambda recorded: recorded.update(root_branch_id=root.id, root_branch_name=root.name))
        self.ctx.settings.update(root_branch_id=root.id, root_branch_name=root.name)
        return root

    # ---- branches -------------------------------------------------------------------------------
    def create_branch(self, workspace: str, *, parent: DbBranch, options: CreateOptions) -> DbBranch:
        name = self._branch_name(workspace, options.git_branch)
        self._check_parent(parent)
        body: dict[str, Any] = {
            "branch": {"name": name, "parent_id": parent.id},
            "endpoints": [{"type": "read_write"}],
            "annotation_value": {"treefork": "1", "treefork_repo": self.ctx.repo_id, "treefork_workspace": workspace},
        }
        if options.ttl_seconds:
            expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=options.ttl_seconds)
            body["branch"]["expires_at"] = expires.isoformat().replace("+00:00", "Z")
        self.ctx.progress(f"creating Neon branch {name} from {parent.name}")
        self._attempted.add(workspace)
        api = self.api  # the client may still be starting in the background: not part of the round trip
        started = time.monotonic()
        try:
            created = api.post(f"{self._base}/branches", body)
        except NeonApiError as e:
            if e.status == 409:
                return self._adopt(name, workspace)
            if e.code == "BRANCHES_LIMIT_EXCEEDED" or e.status == 422 and "limit" in e.message.lower():
                raise self._limit_error() from None
            raise
        branch = created["branch"]
        rtt = time.monotonic() - started
        conn = neon_conn.from_create(created, pooled=self._pooled, database=self._database, role=self._role)
        target = (
            None if conn else neon_conn.target_or_none(self._base, created, database=self._database, role=self._role)
        )
        reveal = neon_conn.Reveal(api, target) if target else None
        self._wait_operations(
            created.get("operations", []),
            what=f"branch {name}",
            learn="create_seconds",
            rtt=rtt,
            beside=reveal.attempt if reveal else None,
        )
        if reveal is not None:
            conn = reveal.target.connection(reveal.password(), pooled=self._pooled)
        if conn is not None:
            self._connections[branch["id"]] = conn
        self._branches = None
        return _db_branch(branch, workspace)

    def find_branch_or_none(self, workspace: str) -> DbBranch | None:
        if self._creating_unrecorded(workspace):
            return None  # create_branch is idempotent (a 409 adopts our branch): no listing on `new`'s path
        for b in self.list_branches():
            if b.workspace == workspace:
                return b
        return None

    def _creating_unrecorded(self, workspace: str) -> bool:
        """The workspace is being created and no branch was recorded or tried for it by this process."""
        if workspace in self._attempted:
            return False
        ws = self.ctx.workspace_or_none(workspace)
        return ws is not None and ws.status == CREATING and not ws.db_id

    def delete_branch(self, branch: DbBranch) -> None:
        if branch.workspace == ROOT_MARK or branch.id == self.ctx.settings.get("root_branch_id"):
            raise BackendError(
                f"refusing to delete Neon branch {branch.name}: it is the root",
                hint="the root branch is never deleted by treefork",
            )
        try:
            data = self.api.get(f"{self._base}/branches/{branch.id}")
        except NeonApiError as e:
            if e.status == 404:
                return  # already gone
            raise
        info, annotation = data["branch"], (data.get("annotation") or {}).get("value")
        if info.get("default") or info.get("protected"):
            kind = "the default branch" if info.get("default") else "protected"
            raise BackendError(
                f"refusing to delete Neon branch {info['name']}: it is {kind}",
                hint="delete it in the Neon console if you really mean to",
            )
        if not self._mine(annotation, None if branch.workspace is None else branch.workspace):
            raise BackendError(
                f"refusing to delete Neon branch {info['name']} ({branch.id}): treefork did not create it for this repository",
                hint="delete it yourself (neonctl branches delete) if you are sure",
            )
        self.ctx.progress(f"deleting Neon branch {info['name']}")
        try:
            result = self.api.delete(f"{self._base}/branches/{branch.id}")
        except NeonApiError as e:
            if e.status == 404:
                return
            children = [b["name"] for b in self._list_all() if b.get("parent_id") == branch.id]
            if children:
                raise BackendError(
                    f"Neon branch {info['name']} has child branches: {', '.join(sorted(children))}",
                    hint="delete its children first (treefork rm <child>)",
                ) from None
            raise
        self._branches = None
        self._connections.pop(branch.id, None)
        if result:
            self._wait_operations(result.get("operations", []), what=f"deleting {info['name']}")
        neon_lifecycle.drop_preserved_if_childless(self, info.get("parent_id"))

    def list_branches(self) -> list[DbBranch]:
        out = []
        for b in self._list_all():
            ann = self._annotations.get(b["id"])
            if not b.get("default") and self._mine(ann) and not neon_lifecycle.in_use_snapshot(ann):
                out.append(
                    DbBranch(
                        name=b["name"],
                        id=b["id"],
                        workspace=(ann or {}).get("treefork_workspace"),
                        clone_method=NEON,
                        extra={"parent_id": b.get("parent_id"), "expires_at": b.get("expires_at")},
                    )
                )
        return out

    def connection(self, branch: DbBranch) -> Connection:
        if branch.id not in self._connections:
            self._connections[branch.id] = neon_conn.fetch_connection(self, branch)
        conn = self._connections[branch.id]
        return Connection(
            url=conn.url,
            direct_url=conn.direct_url,
            extra_env={"DATABASE_URL_UNPOOLED": conn.direct_url or conn.url, "NEON_BRANCH": branch.name},
            context={"projectId": self.project_id, "branchId": branch.id},
        )

    # ---- reset, diff, merge (backends/neon/lifecycle.py) -----------------------------------------
    def reset_branch(self, branch: DbBranch, *, source: DbBranch) -> DbBranch:
        return neon_lifecycle.reset_branch(self, branch, source=source)

    def schema_diff(self, branch: DbBranch, *, base: DbBranch) -> str:
        return neon_lifecycle.schema_diff(self, branch, base=base)

    def schema_url_or_none(self, branch: DbBranch) -> str | None:
        return None  # compare_schema diffs on Neon's side; its dumps need no pg_dump of ours

    def snapshot(self, branch: DbBranch, *, tag: str) -> DbBranch:
        return neon_lifecycle.snapshot(self, branch, tag=tag)

    def find_snapshot_or_none(self, branch: DbBranch, *, tag: str) -> DbBranch | None:
        return neon_lifecycle.find_snapshot_or_none(self, branch, tag=tag)

    def restore(self, branch: DbBranch, *, snapshot: DbBranch) -> None:
        neon_lifecycle.restore(self, branch, snapshot=snapshot)

    def drop_snapshot(self, snapshot: DbBranch) -> None:
        neon_lifecycle.drop_snapshot(self, snapshot)

    def writes_so_far(self, branch: DbBranch) -> int | None:
        return None  # a compute may be asleep: not worth waking to count

    # ---- helpers --------------------------------------------------------------------------------
    @property
    def _pooled(self) -> bool:
        return bool(self.ctx.config.neon.get("pooled", True))

    @property
    def _database(self) -> str:
        return str(self.ctx.config.neon.get("database") or "")

    @property
    def _role(self) -> str:
        return str(self.ctx.config.neon.get("role") or "")

    def _branch_name(self, workspace: str, git_branch: str | None) -> str:
        template = str(self.ctx.config.neon.get("branch_name_template") or "{branch}")
        raw = template.replace("{branch}", git_branch or workspace).replace("{workspace}", workspace)
        name = re.sub(r"[\s\x00-\x1f\x7f]+", "-", raw).strip("-")[:256]
        return name or f"treefork-{self.ctx.repo_id}-{workspace}"[:256]

    def _list_all(self) -> list[dict[str, Any]]:
        if self._branches is not None:
            return self._branches
        branches: list[dict[str, Any]] = []
        annotations: dict[str, dict[str, str]] = {}
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = self.api.get(f"{self._base}/branches", params)
            branches += page.get("branches", [])
            annotations.update({k: (v or {}).get("value") or {} for k, v in (page.get("annotations") or {}).items()})
            cursor = (page.get("pagination") or {}).get("next")
            if not cursor or not page.get("branches"):
                break
        self._branches, self._annotations = branches, annotations
        return branches

    def _check_parent(self, parent: DbBranch) -> None:
        info = next((b for b in self._branches or [] if b["id"] == parent.id), None)
        if info is None and parent.workspace != ROOT_MARK:
            info = self.api.get(f"{self._base}/branches/{parent.id}")["branch"]
        if info is not None and info.get("expires_at"):
            raise FatalError(
                f"Neon branch {parent.name} expires ({info['expires_at']}); Neon does not allow children of an expiring branch",
                hint=f"fork from another workspace, or recreate {parent.name} without --ttl",
            )

    def _adopt(self, name: str, workspace: str) -> DbBranch:
        page = self.api.get(f"{self._base}/branches", {"search": name, "limit": 100})
        match = next((b for b in page.get("branches", []) if b["name"] == name), None)
        ann = ((page.get("annotations") or {}).get(match["id"]) or {}).get("value") if match else None
        if match is None or not self._mine(ann, workspace):
            raise BackendError(
                f"a Neon branch named {name} already exists and treefork did not create it",
                hint="rename or delete it in Neon, or set [neon].branch_name_template in treefork.toml (e.g. 'tf-{workspace}')",
            )
        self.ctx.progress(f"adopting the existing Neon branch {name} (made by treefork for {workspace})")
        return _db_branch(match, workspace)

    def _limit_error(self) -> BackendError:
        try:
            count: Any = self.api.get(f"{self._base}/branches/count").get("count")
        except FatalError:
            count = "unknown"
        return BackendError(
            f"Neon project {self.project_id} is at its branch limit ({count} branches; {PLAN_LIMITS})",
            hint="run `treefork gc` to delete branches of removed workspaces, or delete branches in the Neon console",
        )

    def _wait_operations(
        self,
        operations: list[dict[str, Any]],
        *,
        what: str,
        learn: str | None = None,
        rtt: float = 0.0,
        beside: Callable[[], bool] | None = None,
    ) -> None:
        """Wait for operations (backends/neon/ops.py), with `beside` run alongside each poll until it is done.
        With `learn`, the first poll waits as long as the last operation of that kind took, and this one's
        time is remembered for the next."""
        expected = self.ctx.settings.get(learn) if learn else None
        first = float(expected) - rtt / 2 if isinstance(expected, (int, float)) else None
        took = neon_ops.wait(
            self.api, self._base, operations, what=what, progress=self.ctx.progress, first_delay=first, beside=beside
        )
        if learn and took is not None and (expected is None or abs(took - float(expected)) > 0.02):
            self.ctx.change_settings(lambda recorded: recorded.update({learn: round(took, 3)}))
            self.ctx.settings[learn] = round(took, 3)


def _db_branch(branch: dict[str, Any], workspace: str) -> DbBranch:
    """A Neon branch object as the Backend Protocol's record of a workspace's branch."""
    return DbBranch(
        name=branch["name"],
        id=branch["id"],
        workspace=workspace,
        clone_method=NEON,
        extra={"parent_id": branch.get("parent_id")},
    )
