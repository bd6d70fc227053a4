"""Nurosentrix workload: servers, instances on them, lifecycle actions, backups, settings.

locust -f load/nurosentrix.py -H http://127.0.0.1:8080 [--token T] [--respect-limits]
"""

from __future__ import annotations

import random
import secrets
import sys
from pathlib import Path

from locust import task

try:
    from load.common import ApiUser
except ModuleNotFoundError:  # run as a file from elsewhere: the repository root holds `load`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from load.common import ApiUser


class NurosentrixUser(ApiUser):
    api = "nurosentrix"
    pool_size = 3  # resources a user keeps at most; creating more deletes one first

    def on_start(self) -> None:
        super().on_start()
        self.servers: list[str] = []
        self.instances: dict[str, str] = {}  # instance id -> its server id

    @task(6)
    def list_servers(self) -> None:
        self.call("listServers")

    @task(2)
    def walk_servers(self) -> None:
        self.walk("listServers")

    @task(4)
    def get_server(self) -> None:
        sid = self.pick(self.servers)
        if sid:
            self.call("getServer", id=sid)

    @task(4)
    def list_instances(self) -> None:
        self.call("listInstances")

    @task(3)
    def get_instance(self) -> None:
        iid = self.pick(list(self.instances))
        if iid:
            self.call("getInstance", id=iid)

    @task(2)
    def create_server(self) -> None:
        if len(self.servers) >= self.pool_size:
            self.delete_server()
            return
        sid = self.create("createServer", self.body("createServer"))
        if sid:
            self.servers.append(sid)

    @task(2)
    def create_instance(self) -> None:
        sid = self.pick(self.servers)
        if sid is None:
            self.create_server()
            return
        if len(self.instances) >= self.pool_size:
            self.delete_instance()
            return
        db = f"db_{secrets.token_hex(4)}"
        iid = self.create("createInstance", self.body("createInstance", server_id=sid, database_name=db))
        if iid:
            self.instances[iid] = sid

    @task(3)
    def instance_action(self) -> None:
        iid = self.pick(list(self.instances))
        if iid:  # an action the instance's state does not allow is a documented 409
            action = random.choice(["start", "stop", "restart", "backup"])
            self.call("instanceAction", id=iid, body={"action": action}, expect=(409,))

    @task(1)
    def list_backups(self) -> None:
        iid = self.pick(list(self.instances))
        if iid:
            self.call("listBackups", id=iid)

    @task(1)
    def settings(self) -> None:
        self.call("getSettings")

    @task(1)
    def delete_instance(self) -> None:
        if self.instances:
            iid = next(iter(self.instances))
            del self.instances[iid]
            self.call("deleteInstance", id=iid)

    @task(1)
    def delete_server(self) -> None:
        if self.servers:
            sid = self.servers.pop(0)
            # deleting a server deletes its instances (documented cascade)
            self.instances = {i: s for i, s in self.instances.items() if s != sid}
            self.call("deleteServer", id=sid)
