"""Nexos workload: projects (created and deleted: plan `pro` allows 25 per account, so each
user keeps at most 2 and a 422 QUOTA_EXCEEDED is an expected answer), their environments
and environment variables, the quota, nodes.

    locust -f load/nexos.py -H http://127.0.0.1:8080 [--token T] [--respect-limits]
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from locust import task

try:
    from load.common import ApiUser
except ModuleNotFoundError:  # run as a file from elsewhere: the repository root holds `load`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from load.common import ApiUser


class NexosUser(ApiUser):
    api = "nexos"
    pool_size = 2

    def on_start(self) -> None:
        super().on_start()
        self.projects: list[str] = []
        self.env_vars: dict[str, str] = {}  # env var id -> its project id

    @task(5)
    def list_projects(self) -> None:
        self.call("listProjects")

    @task(3)
    def get_project(self) -> None:
        pid = self.pick(self.projects)
        if pid:
            self.call("getProject", id=pid)

    @task(2)
    def quota(self) -> None:
        self.call("getQuota")

    @task(2)
    def list_environments(self) -> None:
        pid = self.pick(self.projects)
        if pid:
            self.call("listEnvironments", id=pid)

    @task(1)
    def list_nodes(self) -> None:
        self.call("listNodes")

    @task(2)
    def create_project(self) -> None:
        if len(self.projects) >= self.pool_size:
            self.delete_project()
            return
        # 409: slug taken; 422: QUOTA_EXCEEDED (25 projects per account on plan pro)
        pid = self.create("createProject", self.body("createProject"), expect=(409, 422))
        if pid:
            self.projects.append(pid)

    @task(2)
    def delete_project(self) -> None:
        if self.projects:
            pid = self.projects.pop(0)
            self.env_vars = {v: p for v, p in self.env_vars.items() if p != pid}
            self.call("deleteProject", id=pid)

    @task(2)
    def put_env_var(self) -> None:
        pid = self.pick(self.projects)
        if pid:
            key = f"LOAD_{secrets.token_hex(3).upper()}"
            data = self.c.data(self.call("putEnvVar", id=pid, body={"key": key, "value": "1"}))
            if isinstance(data, dict) and "id" in data:
                self.env_vars[str(data["id"])] = pid

    @task(1)
    def list_env_vars(self) -> None:
        pid = self.pick(self.projects)
        if pid:
            self.call("listEnvVars", id=pid)

    @task(1)
    def delete_env_var(self) -> None:
        if self.env_vars:
            vid, pid = next(iter(self.env_vars.items()))
            del self.env_vars[vid]
            self.call("deleteEnvVar", id=pid, varId=vid)
