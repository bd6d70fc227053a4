"""CloudNexus .io behaviour the spec cannot declare: the region catalogue and where an
instance may be created. Plans fix an instance's specs."""

from __future__ import annotations

from ..calls import Call, Reply

# slug, name, status, avg latency, capacity: the first two as documented, the rest inferred.
REGIONS = [
    {
        "slug": "us-east-1",
        "name": "Virginia, US",
        "status": "healthy",
        "avg_latency_ms": 12,
        "capacity": True,
    },
    {"slug": "eu-west-2", "name": "London, UK", "status": "healthy", "avg_latency_ms": 45, "capacity": True},
    {
        "slug": "eu-central-1",
        "name": "Frankfurt, DE",
        "status": "degraded",
        "avg_latency_ms": 38,
        "capacity": True,
    },
    {
        "slug": "ap-southeast-1",
        "name": "Singapore, SG",
        "status": "healthy",
        "avg_latency_ms": 180,
        "capacity": False,
    },
]
PLAN_SPECS = {
    "starter": {"cpu": 1, "ram_gb": 2, "disk_gb": 50},
    "pro": {"cpu": 4, "ram_gb": 16, "disk_gb": 200},
    "enterprise": {"cpu": 16, "ram_gb": 64, "disk_gb": 800},
}


def list_regions(call: Call) -> Reply:
    return Reply(200, {"regions": REGIONS}, kind="raw")


def create_instance(call: Call) -> Reply:
    # the region is one with capacity: the spec's enum (CreateInstanceRequest.region) says which
    fields = {**call.body, "specs": PLAN_SPECS[call.body["plan"]]}
    record = call.resources.create("instances", call.owner, fields)
    return Reply(201, call.resources.public("instances", record))
