"""CloudNexus (.com) workload: servers and databases, listed, paged, read, created, deleted.

locust -f load/cloudnexus.py -H http://127.0.0.1:8080 [--token T] [--respect-limits]
"""

from __future__ import annotations

import sys
from pathlib import Path

from locust import task

try:
    from load.common import ApiUser
except ModuleNotFoundError:  # run as a file from elsewhere: the repository root holds `load`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from load.common import ApiUser


class CloudNexusUser(ApiUser):
    api = "cloudnexus"
    pool_size = 3

    def on_start(self) -> None:
        super().on_start()
        self.pools: dict[str, list[str]] = {"Server": [], "Database": []}

    def _create(self, kind: str) -> None:
        pool = self.pools[kind]
        if len(pool) >= self.pool_size:
            self._delete(kind)
            return
        rid = self.create(f"create{kind}", self.body(f"create{kind}"))
        if rid:
            pool.append(rid)

    def _delete(self, kind: str) -> None:
        if self.pools[kind]:
            self.call(f"delete{kind}", id=self.pools[kind].pop(0))

    @task(5)
    def list_servers(self) -> None:
        self.call("listServers")

    @task(3)
    def list_databases(self) -> None:
        self.call("listDatabases")

    @task(2)
    def walk_servers(self) -> None:
        self.walk("listServers")

    @task(1)
    def walk_databases(self) -> None:
        self.walk("listDatabases")

    @task(3)
    def get_server(self) -> None:
        rid = self.pick(self.pools["Server"])
        if rid:
            self.call("getServer", id=rid)

    @task(2)
    def get_database(self) -> None:
        rid = self.pick(self.pools["Database"])
        if rid:
            self.call("getDatabase", id=rid)

    @task(2)
    def create_server(self) -> None:
        self._create("Server")

    @task(1)
    def create_database(self) -> None:
        self._create("Database")

    @task(1)
    def delete_server(self) -> None:
        self._delete("Server")

    @task(1)
    def delete_database(self) -> None:
        self._delete("Database")
