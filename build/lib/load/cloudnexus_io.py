"""CloudNexus (.io) workload: the region catalogue, instances created where there is capacity,
listed with offset pagination, read and deleted.

    locust -f load/cloudnexus_io.py -H http://127.0.0.1:8080 [--token T] [--respect-limits]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

from locust import task

try:
    from load.common import ApiUser
except ModuleNotFoundError:  # run as a file from elsewhere: the repository root holds `load`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from load.common import ApiUser


class CloudNexusIoUser(ApiUser):
    api = "cloudnexus-io"
    pool_size = 3

    def on_start(self) -> None:
        super().on_start()
        self.instances: list[str] = []
        self.regions: list[str] = []

    def _regions(self) -> list[str]:
        if not self.regions:
            body = self.call("listRegions")
            found = body.get("regions", []) if isinstance(body, dict) else []
            self.regions = [
                r["slug"] for r in found if r.get("capacity") and r.get("status") != "unavailable"
            ]
        return self.regions

    @task(5)
    def list_instances(self) -> None:
        self.call("listInstances")

    @task(2)
    def walk_instances(self) -> None:
        self.walk("listInstances")

    @task(3)
    def get_instance(self) -> None:
        iid = self.pick(self.instances)
        if iid:
            self.call("getInstance", id=iid)

    @task(1)
    def list_regions(self) -> None:
        self.regions = []
        self._regions()

    @task(2)
    def create_instance(self) -> None:
        if len(self.instances) >= self.pool_size:
            self.delete_instance()
            return
        regions = self._regions()
        if not regions:
            return
        plan = random.choice(["starter", "pro", "enterprise"])
        iid = self.create(
            "createInstance", self.body("createInstance", region=random.choice(regions), plan=plan)
        )
        if iid:
            self.instances.append(iid)

    @task(1)
    def delete_instance(self) -> None:
        if self.instances:
            self.call("deleteInstance", id=self.instances.pop(0))
