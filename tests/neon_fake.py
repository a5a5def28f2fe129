"""A stateful fake of Neon API v2, written from neon-openapi.yaml (paths, field names, GeneralError).

It serves both treefork and the real neonctl on 127.0.0.1. Knobs: `latency` (seconds per request),
`faults` (a scripted queue of (status, retry_after) answered before any real work), `fault_rate`
(a probability of 429/423/503), `branch_limit` (422 BRANCHES_LIMIT_EXCEEDED), `op_polls` (polls before
an operation finishes) or `op_seconds` (how long an operation takes). `log` records (method, path) of every request.

`strict=True` answers with only what the spec guarantees where the default fake is generous, as an
independent implementation of the spec may: the create response has no `connection_uris` (optional: the
connection comes from its required `endpoints`, `databases` and `roles` plus `reveal_password`), the
operations listing is oldest first (the spec names no order), and `reveal_password` of a branch whose
operations still run answers 423 Locked (the spec's answer to a request that meets a running operation).
"""

from __future__ import annotations

import difflib
import itertools
import json
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testing.loopback import LoopbackHTTP

WORDS_A = ["aged", "bold", "calm", "dark", "eager", "fancy", "gentle", "hidden", "icy", "jolly", "keen", "lively"]
WORDS_B = ["salad", "river", "forest", "meadow", "cloud", "stone", "field", "leaf", "wave", "dust", "sun", "moon"]
_counter = itertools.count(100000)
PROJECT = "fancy-proj-123456"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _haiku(prefix: str) -> str:
    return f"{prefix}-{random.choice(WORDS_A)}-{random.choice(WORDS_B)}-{next(_counter)}"


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Project:
    id: str
    branches: dict[str, dict[str, Any]] = field(default_factory=dict)  # insertion order = creation order
    annotations: dict[str, dict[str, str]] = field(default_factory=dict)
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)  # branch id -> endpoint
    passwords: dict[str, str] = field(default_factory=dict)  # branch id -> neondb_owner's password
    operations: dict[str, dict[str, Any]] = field(default_factory=dict)
    schemas: dict[str, str] = field(default_factory=dict)  # branch id -> its database's schema (SQL text)


class FakeNeon:
    def __init__(
        self,
        *,
        api_key: str = "napi_fake_test_key_0123456789",
        project_ids: tuple[str, ...] = ("fancy-proj-123456",),
        strict: bool = False,
    ) -> None:
        self.api_key = api_key
        self.strict = strict
        self.projects: dict[str, Project] = {}
        self.latency = 0.0
        self.faults: list[tuple[int, str | None]] = []
        self.fault_rate = 0.0
        self.branch_limit = 5000
        self.op_polls = 2
        self.op_seconds: float | None = None  # operations take this long (time-based) instead of op_polls polls
        self.log: list[tuple[str, str]] = []
        self.log_times: list[float] = []  # when each request of `log` was handled (after `latency`)
        self.lock = threading.RLock()
        self._rng = random.Random(7)
        for pid in project_ids:
            self.add_project(pid)
        self.http = LoopbackHTTP(_handler(self))

    # ---- lifecycle and test helpers -------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.http.url

    def start(self) -> FakeNeon:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def add_project(self, pid: str) -> Project:
        project = Project(pid)
        self.projects[pid] = project
        self._new_branch(project, "main", parent=None, default=True)
        return project

    def branch_names(self, pid: str) -> dict[str, str]:
        """name -> id of every branch except the default."""
        with self.lock:
            return {b["name"]: b["id"] for b in self.projects[pid].branches.values() if not b["default"]}

    def branch_by_name(self, pid: str, name: str) -> dict[str, Any]:
        with self.lock:
            return next(b for b in self.projects[pid].branches.values() if b["name"] == name)

    def add_foreign_branch(
        self, pid: str, name: str, *, annotation: dict[str, str] | None = None, protected: bool = False
    ) -> dict[str, Any]:
        with self.lock:
            project = self.projects[pid]
            default = next(b for b in project.branches.values() if b["default"])
            branch = self._new_branch(project, name, parent=default["id"], protected=protected)
            if annotation:
                project.annotations[branch["id"]] = annotation
            return branch

    def set_schema(self, pid: str, bid: str, sql: str) -> None:
        """What a migration on the branch would do (the fake keeps a schema per branch, no rows)."""
        with self.lock:
            self.projects[pid].schemas[bid] = sql

    def schema(self, pid: str, bid: str) -> str:
        with self.lock:
            return self.projects[pid].schemas[bid]

    def requests(self, method: str, suffix: str = "") -> int:
        with self.lock:
            return sum(1 for m, p in self.log if m == method and p.endswith(suffix))

    # ---- model ----------------------------------------------------------------------------------
    def _new_branch(
        self,
        project: Project,
        name: str,
        *,
        parent: str | None,
        default: bool = False,
        protected: bool = False,
        expires_at: str | None = None,
    ) -> dict[str, Any]:
        bid = _haiku("br")
        now = _now()
        branch = {
            "id": bid,
            "project_id": project.id,
            "parent_id": parent,
            "name": name,
            "current_state": "ready",
            "state_changed_at": now,
            "creation_source": "console",
            "default": default,
            "protected": protected,
            "cpu_used_sec": 0,
            "compute_time_seconds": 0,
            "active_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "created_at": now,
            "updated_at": now,
            "init_source": "parent-data",
        }
        if parent is None:
            branch.pop("parent_id")
        if expires_at:
            branch["expires_at"] = expires_at
        eid = _haiku("ep")
        project.branches[bid] = branch
        project.endpoints[bid] = {
            "id": eid,
            "host": f"{eid}.us-east-2.aws.neon.tech",
            "branch_id": bid,
            "project_id": project.id,
            "type": "read_write",
            "current_state": "active",
            "region_id": "aws-us-east-2",
            "autoscaling_limit_min_cu": 0.25,
            "autoscaling_limit_max_cu": 0.25,
            "pooler_enabled": False,
            "pooler_mode": "transaction",
            "disabled": False,
            "passwordless_access": True,
            "created_at": now,
            "updated_at": now,
            "settings": {},
            "proxy_host": "us-east-2.aws.neon.tech",
            "suspend_timeout_seconds": 0,
            "provisioner": "k8s-neonvm",
        }
        project.schemas[bid] = project.schemas.get(parent or "", "")
        project.passwords[bid] = "npg_" + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")
        return branch

    def _operation(self, project: Project, branch_id: str, action: str) -> dict[str, Any]:
        op = {
            "id": str(uuid.uuid4()),
            "project_id": project.id,
            "branch_id": branch_id,
            "action": action,
            "status": "running",
            "failures_count": 0,
            "created_at": _now(),
            "updated_at": _now(),
            "total_duration_ms": 0,
        }
        project.operations[op["id"]] = {**op, "_polls_left": self.op_polls, "_started": time.monotonic()}
        return op

    def project(self, pid: str) -> Project:
        if pid not in self.projects:
            raise ApiError(404, f"project {pid} not found")
        return self.projects[pid]

    def branch(self, project: Project, bid: str) -> dict[str, Any]:
        if bid not in project.branches:
            raise ApiError(404, "branch not found")
        return project.branches[bid]

    def annotations_map(self, project: Project, ids: list[str]) -> dict[str, Any]:
        return {bid: self._annotation(project, bid) for bid in ids if bid in project.annotations}

    def _annotation(self, project: Project, bid: str) -> dict[str, Any]:
        return {
            "object": {"type": "console/branch", "id": bid},
            "value": project.annotations[bid],
            "created_at": _now(),
            "updated_at": _now(),
        }

    def connection_params(self, project: Project, bid: str) -> dict[str, str]:
        ep = project.endpoints[bid]
        return {
            "database": "neondb",
            "password": project.passwords[bid],
            "role": "neondb_owner",
            "host": ep["host"],
            "pooler_host": ep["host"].replace(ep["id"], ep["id"] + "-pooler", 1),
        }

    # ---- routes ---------------------------------------------------------------------------------
    def list_branches(self, project: Project, q: dict[str, str]) -> dict[str, Any]:
        items = list(project.branches.values())
        if q.get("search"):
            items = [b for b in items if q["search"] in b["name"] or q["search"] in b["id"]]
        start = int(q["cursor"]) if q.get("cursor", "").isdigit() else 0
        limit = int(q.get("limit") or 10000)
        page = items[start : start + limit]
        pagination: dict[str, Any] = {
            "sort_by": q.get("sort_by", "updated_at"),
            "sort_order": q.get("sort_order", "desc"),
        }
        if start + limit < len(items):
            pagination["next"] = str(start + limit)
        return {
            "branches": page,
            "annotations": self.annotations_map(project, [b["id"] for b in page]),
            "pagination": pagination,
        }

    def create_branch(self, project: Project, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        spec = body.get("branch") or {}
        default = next(b for b in project.branches.values() if b["default"])
        parent = self.branch(project, spec.get("parent_id") or default["id"])
        name = spec.get("name") or _haiku("br")
        if not 1 <= len(name) <= 256:
            raise ApiError(400, "branch name must be 1-256 characters")
        if any(b["name"] == name for b in project.branches.values()):
            raise ApiError(409, f'branch already exists; branch_name:"{name}"')
        if len(project.branches) >= self.branch_limit:
            raise ApiError(422, f"branches limit exceeded; limit is {self.branch_limit}", "BRANCHES_LIMIT_EXCEEDED")
        if parent.get("expires_at"):
            raise ApiError(400, "cannot create a child of a branch with an expiration time")
        branch = self._new_branch(
            project, name, parent=parent["id"], expires_at=spec.get("expires_at"), protected=bool(spec.get("protected"))
        )
        branch["current_state"] = "init"
        if body.get("annotation_value"):
            project.annotations[branch["id"]] = dict(body["annotation_value"])
        ops = [self._operation(project, branch["id"], "create_branch")]
        out: dict[str, Any] = {
            "branch": branch,
            "operations": ops,
            "roles": [self.role(project, branch["id"])],
            "databases": [self.database(project, branch["id"])],
            "endpoints": [],
        }
        if body.get("endpoints"):
            ops.append(self._operation(project, branch["id"], "start_compute"))
            out["endpoints"] = [project.endpoints[branch["id"]]]
            if self.strict:
                return 201, out
            params = self.connection_params(project, branch["id"])
            uri = f"postgresql://{params['role']}:{params['password']}@{params['host']}/{params['database']}?sslmode=require"
            out["connection_uris"] = [{"connection_uri": uri, "connection_parameters": params}]
        else:
            project.endpoints.pop(branch["id"])
        return 201, out

    def delete_branch(self, project: Project, bid: str) -> tuple[int, dict[str, Any] | None]:
        if bid not in project.branches:
            return 204, None
        branch = project.branches[bid]
        if branch["default"]:
            raise ApiError(400, "cannot delete the default branch")
        if branch["protected"]:
            raise ApiError(400, "cannot delete a protected branch")
        if any(b.get("parent_id") == bid for b in project.branches.values()):
            raise ApiError(422, "branch has children; delete them first")
        del project.branches[bid]
        project.schemas.pop(bid, None)
        project.annotations.pop(bid, None)
        project.endpoints.pop(bid, None)
        return 200, {"branch": branch, "operations": [self._operation(project, bid, "delete_timeline")]}

    def restore_branch(self, project: Project, bid: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """BranchRestoreRequest -> BranchOperations. With preserve_under_name the previous state is kept
        as a new branch and the branch's children move to it (as the spec describes)."""
        branch = self.branch(project, bid)
        if not body.get("source_branch_id"):
            raise ApiError(400, "source_branch_id is required")
        source = self.branch(project, body["source_branch_id"])
        if branch["protected"]:
            raise ApiError(400, "cannot restore a protected branch")
        children = [b for b in project.branches.values() if b.get("parent_id") == bid]
        preserve = body.get("preserve_under_name")
        if (children or source["id"] == bid) and not preserve:
            raise ApiError(400, "preserve_under_name is required when the branch has children")
        new_schema = project.schemas[source["id"]]
        if preserve:
            kept = self._new_branch(project, preserve, parent=branch.get("parent_id"))
            project.endpoints.pop(kept["id"])
            project.schemas[kept["id"]] = project.schemas[bid]
            for child in children:
                child["parent_id"] = kept["id"]
        project.schemas[bid] = new_schema
        branch["updated_at"] = _now()
        return 200, {"branch": branch, "operations": [self._operation(project, bid, "apply_storage_config")]}

    def compare_schema(self, project: Project, bid: str, q: dict[str, str]) -> dict[str, Any]:
        if q.get("db_name") != "neondb":
            raise ApiError(404, "database not found")
        base_id = q.get("base_branch_id") or self.branch(project, bid).get("parent_id") or bid
        self.branch(project, base_id)
        before = project.schemas[base_id].splitlines()
        after = project.schemas[bid].splitlines()
        diff = difflib.unified_diff(before, after, fromfile=base_id, tofile=bid, lineterm="")
        return {"diff": "\n".join(diff)}

    def role(self, project: Project, bid: str) -> dict[str, Any]:
        return {
            "branch_id": bid,
            "name": "neondb_owner",
            "protected": False,
            "created_at": _now(),
            "updated_at": _now(),
        }

    def database(self, project: Project, bid: str) -> dict[str, Any]:
        return {
            "id": 1,
            "branch_id": bid,
            "name": "neondb",
            "owner_name": "neondb_owner",
            "created_at": _now(),
            "updated_at": _now(),
        }

    def get_operation(self, project: Project, op_id: str) -> dict[str, Any]:
        if op_id not in project.operations:
            raise ApiError(404, "operation not found")
        return {"operation": self._advance(project, project.operations[op_id])}

    def list_operations(self, project: Project, q: dict[str, str]) -> dict[str, Any]:
        """Newest first, as ListOperations; each listing counts as a poll of the operations it shows."""
        limit = int(q.get("limit") or 10)
        ops = list(project.operations.values())
        page = (ops if self.strict else list(reversed(ops)))[:limit]
        return {"operations": [self._advance(project, op) for op in page], "pagination": {"cursor": ""}}

    def running(self, project: Project, bid: str) -> bool:
        """An operation on the branch has not finished (by `op_seconds`; by `op_polls`, until polled to the end)."""
        return any(
            op["branch_id"] == bid
            and op["status"] == "running"
            and (self.op_seconds is None or time.monotonic() - op["_started"] < self.op_seconds)
            for op in project.operations.values()
        )

    def _advance(self, project: Project, op: dict[str, Any]) -> dict[str, Any]:
        """An operation finishes after `op_polls` polls, or, when `op_seconds` is set, that long after it began."""
        if self.op_seconds is not None:
            done = time.monotonic() - op["_started"] >= self.op_seconds
        else:
            op["_polls_left"] = max(0, op["_polls_left"] - 1)
            done = op["_polls_left"] == 0
        if done and op["status"] == "running":
            op["status"] = "finished"
            took = self.op_seconds if self.op_seconds is not None else time.monotonic() - op["_started"]
            op["total_duration_ms"] = int(took * 1000)  # how long it ran, not when it was seen done
            if op["branch_id"] in project.branches:
                project.branches[op["branch_id"]]["current_state"] = "ready"
        return {k: v for k, v in op.items() if not k.startswith("_")}

    def connection_uri(self, project: Project, q: dict[str, str]) -> dict[str, Any]:
        bid = q.get("branch_id") or next(b["id"] for b in project.branches.values() if b["default"])
        self.branch(project, bid)
        if q.get("role_name") != "neondb_owner" or q.get("database_name") != "neondb":
            raise ApiError(404, "role or database not found")
        p = self.connection_params(project, bid)
        host = p["pooler_host"] if q.get("pooled") == "true" else p["host"]
        return {"uri": f"postgresql://{p['role']}:{p['password']}@{host}/{p['database']}?sslmode=require"}

    def route(self, method: str, path: str, q: dict[str, str], body: dict[str, Any]) -> tuple[int, Any]:
        m = re.fullmatch(r"/projects/([^/]+)(/.*)?", path)
        if not m:
            raise ApiError(404, f"no route {method} {path}")
        project, rest = self.project(m.group(1)), m.group(2) or ""
        if method == "GET" and rest == "":
            return 200, {
                "project": {"id": project.id, "name": project.id, "region_id": "aws-us-east-2", "pg_version": 17}
            }
        if method == "GET" and rest == "/branches":
            return 200, self.list_branches(project, q)
        if method == "GET" and rest == "/branches/count":
            items = [b for b in project.branches.values() if not q.get("search") or q["search"] in b["name"]]
            return 200, {"count": len(items)}
        if method == "POST" and rest == "/branches":
            return self.create_branch(project, body)
        if method == "GET" and rest == "/connection_uri":
            return 200, self.connection_uri(project, q)
        if method == "GET" and rest == "/operations":
            return 200, self.list_operations(project, q)
        if method == "GET" and (om := re.fullmatch(r"/operations/([^/]+)", rest)):
            return 200, self.get_operation(project, om.group(1))
        bm = re.fullmatch(r"/branches/([^/]+)(/.*)?", rest)
        if not bm:
            raise ApiError(404, f"no route {method} {path}")
        bid, sub = bm.group(1), bm.group(2) or ""
        if method == "DELETE" and sub == "":
            return self.delete_branch(project, bid)
        branch = self.branch(project, bid)
        if method == "GET" and sub == "":
            out = {"branch": branch}
            if bid in project.annotations:
                out["annotation"] = self._annotation(project, bid)
            return 200, out
        if method == "POST" and sub == "/restore":
            return self.restore_branch(project, bid, body)
        if method == "GET" and sub == "/compare_schema":
            return 200, self.compare_schema(project, bid, q)
        if method == "GET" and sub == "/endpoints":
            return 200, {"endpoints": [project.endpoints[bid]] if bid in project.endpoints else []}
        if method == "GET" and sub == "/roles":
            return 200, {"roles": [self.role(project, bid)]}
        if method == "GET" and sub == "/databases":
            return 200, {"databases": [self.database(project, bid)]}
        if method == "GET" and sub == "/roles/neondb_owner/reveal_password":
            if self.strict and self.running(project, bid):
                raise ApiError(423, "branch is locked by a running operation")
            return 200, {"password": project.passwords[bid]}
        if method == "GET" and sub.startswith("/roles/"):
            raise ApiError(404, "role not found")
        raise ApiError(404, f"no route {method} {path}")

    def fault_or_none(self) -> tuple[int, str | None] | None:
        if self.faults:
            return self.faults.pop(0)
        if self.fault_rate and self._rng.random() < self.fault_rate:
            return self._rng.choice([(429, "0"), (423, None), (503, None)])
        return None


def _handler(fake: FakeNeon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if fake.latency:
                time.sleep(fake.latency)
            with fake.lock:
                fake.log.append((method, parts.path))
                fake.log_times.append(time.monotonic())
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(
                        401, {"code": "", "message": "authentication required", "request_id": str(uuid.uuid4())}
                    )
                fault = fake.fault_or_none()
                if fault:
                    status, retry_after = fault
                    return self._send(
                        status,
                        {"code": "", "message": f"fake fault {status}", "request_id": str(uuid.uuid4())},
                        {"Retry-After": retry_after} if retry_after is not None else {},
                    )
                try:
                    body = json.loads(raw) if raw else {}
                    status, data = fake.route(method, parts.path, q, body)
                except ApiError as e:
                    status, data = e.status, {"code": e.code, "message": e.message, "request_id": str(uuid.uuid4())}
                self._send(status, data)

        def _send(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            payload = b"" if status == 204 or data is None else json.dumps(data).encode()
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if payload:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

    return Handler


def neon_env(fake: FakeNeon, **extra: str) -> dict[str, str]:
    """The environment that points treefork at the fake."""
    return {"NEON_API_HOST": fake.url, "NEON_API_KEY": fake.api_key, "TREEFORK_NEON_POLL_SECONDS": "0.005", **extra}
