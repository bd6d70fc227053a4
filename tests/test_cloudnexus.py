"""CloudNexus (.com) and CloudNexus (.io) as clients see them."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Harness


@pytest.fixture
def slow(make_harness) -> Harness:  # type: ignore[no-untyped-def]
    return make_harness(async_delay=None)  # type: ignore[no-any-return]


def test_server_defaults_and_async_provisioning(slow: Harness) -> None:
    c = slow.api("cloudnexus")
    body = {
        "name": "production-web-01",
        "plan": "pro",
        "region": "us-east-1",
        "ssh_keys": ["key_8f3k29", "key_9d2m41"],
    }
    r = c.post("/servers", json=body)
    assert r.status_code == 201
    server = r.json()["data"]
    assert server["image"] == "ubuntu-22.04" and server["status"] == "provisioning"
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", server["ipv4"]) and server["ssh_keys"] == body["ssh_keys"]
    assert r.json()["status"] == "success" and r.json()["meta"]["request_id"] == r.headers["X-Request-ID"]
    assert c.get("/servers", params={"status": "active"}).json()["meta"]["total"] == 0
    slow.clock.advance(5)
    assert c.get(f"/servers/{server['id']}").json()["data"]["status"] == "active"
    assert c.get("/servers", params={"status": "suspended"}).json()["meta"]["total"] == 0


@pytest.mark.parametrize(
    ("engine", "version", "port"),
    [
        ("postgresql", "15.4", 5432),
        ("mysql", "8.0", 3306),
        ("redis", "7.2", 6379),
        ("mongodb", "7.0", 27017),
    ],
)
def test_database_engines_with_their_versions(slow: Harness, engine: str, version: str, port: int) -> None:
    c = slow.api("cloudnexus")
    r = c.post(
        "/databases",
        json={
            "engine": engine,
            "version": version,
            "plan": "standard",
            "name": "app-db-prod",
            "region": "us-east-1",
        },
    )
    assert r.status_code == 201
    db = r.json()["data"]
    assert (db["status"], db["host"], db["port"]) == ("creating", None, port)
    slow.clock.advance(10)
    online = c.get(f"/databases/{db['id']}").json()["data"]
    assert online["status"] == "online" and online["host"].endswith(".sandbox.test")
    assert c.get("/databases", params={"engine": engine}).json()["meta"]["total"] == 1


def test_unsupported_version_and_engine(harness: Harness) -> None:
    c = harness.api("cloudnexus")
    base = {"plan": "standard", "name": "db", "region": "us-east-1"}
    # the versions each engine offers are in the spec's schema: refused as invalid parameters
    r = c.post("/databases", json={**base, "engine": "postgresql", "version": "9.6"})
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "version"
    r = c.post("/databases", json={**base, "engine": "oracle", "version": "19"})
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "engine"


def test_error_envelope_is_the_status_error_shape(harness: Harness) -> None:
    r = harness.client("cloudnexus").get("/servers")
    body = r.json()
    assert body["status"] == "error" and body["error"]["code"] == "UNAUTHORIZED"
    assert set(body["meta"]) == {"request_id", "timestamp"}


def test_io_instance_lifecycle_and_public_ip(slow: Harness) -> None:
    c = slow.api("cloudnexus-io")
    r = c.post("/instances", json={"name": "worker-01", "region": "us-east-1", "plan": "pro"})
    assert r.status_code == 201
    inst = r.json()
    assert re.fullmatch(r"[0-9a-f-]{36}", inst["id"]) and inst["status"] == "pending"
    assert inst["public_ip"] is None and inst["specs"] == {"cpu": 4, "ram_gb": 16, "disk_gb": 200}
    slow.clock.advance(2)
    assert c.get(f"/instances/{inst['id']}").json()["status"] == "provisioning"
    slow.clock.advance(5)
    running = c.get(f"/instances/{inst['id']}").json()
    assert running["status"] == "running" and running["public_ip"]


def test_io_regions_and_where_instances_may_go(harness: Harness) -> None:
    c = harness.api("cloudnexus-io")
    regions = c.get("/regions").json()["regions"]
    assert regions[:2] == [
        {
            "slug": "us-east-1",
            "name": "Virginia, US",
            "status": "healthy",
            "avg_latency_ms": 12,
            "capacity": True,
        },
        {
            "slug": "eu-west-2",
            "name": "London, UK",
            "status": "healthy",
            "avg_latency_ms": 45,
            "capacity": True,
        },
    ]
    full = next(r["slug"] for r in regions if not r["capacity"])
    for region in ("mars-1", full):  # the regions with capacity are the spec's enum
        r = c.post("/instances", json={"name": "w", "region": region, "plan": "pro"})
        assert r.status_code == 400
        assert r.json()["error"]["details"][0]["field"] == "region"
    assert c.get("/instances").json()["meta"]["total"] == 0


def test_io_region_filter_and_offset_paging(harness: Harness) -> None:
    c = harness.api("cloudnexus-io")
    for i, region in enumerate(["us-east-1", "eu-west-2", "us-east-1"]):
        c.post("/instances", json={"name": f"w{i}", "region": region, "plan": "starter"})
    body = c.get("/instances", params={"region": "us-east-1", "limit": 1, "offset": 1}).json()
    assert body["meta"] == {"total": 2, "limit": 1, "offset": 1}
    assert [i["name"] for i in body["data"]] == ["w2"]
