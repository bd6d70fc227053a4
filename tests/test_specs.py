"""The four contracts: valid OpenAPI, every documented endpoint present, extensions coherent."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from contract import HTTP_METHODS, SPECS_DIR, available_specs, load_path
from tests.apis import APIS

ENDPOINTS = Path(__file__).parent / "endpoints"


def test_every_api_present_has_its_parts() -> None:
    """The recipe for an API (docs/internals.md, "Adding an API"): whatever spec is present has
    its endpoint list, its provenance, a collection for the engine tests and a load workload;
    a fifth API missing one fails here rather than being skipped."""
    from load import LOCUSTFILES
    from tests.apis import BY_API

    assert APIS and set(APIS) == set(available_specs())
    tests = Path(__file__).parent
    for api in APIS:
        assert (ENDPOINTS / f"{api}.yaml").is_file(), f"tests/endpoints/{api}.yaml"
        assert (tests / "provenance" / f"{api}.yaml").is_file(), f"tests/provenance/{api}.yaml"
        assert api in BY_API, f"a Collection for {api} in tests/apis.py"
        assert api in LOCUSTFILES, f"a load workload for {api} in load/__init__.py LOCUSTFILES"
    assert sorted(p.stem for p in ENDPOINTS.glob("*.yaml")) == sorted(APIS)


@pytest.mark.parametrize("api", APIS)
def test_spec_is_valid_openapi(api: str) -> None:
    validate(yaml.safe_load((SPECS_DIR / f"{api}.yaml").read_text()))


@pytest.mark.parametrize("api", APIS)
def test_every_documented_endpoint_is_in_the_spec(api: str) -> None:
    doc = yaml.safe_load((SPECS_DIR / f"{api}.yaml").read_text())
    present = {f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item if m in HTTP_METHODS}
    documented = yaml.safe_load((ENDPOINTS / f"{api}.yaml").read_text())
    assert documented, "the endpoint list may not be empty"
    assert sorted(set(documented) - present) == []


@pytest.mark.parametrize("api", APIS)
def test_operations_are_complete(api: str) -> None:
    """Stable ids, a rate limit each, the error responses a client can cause, inferred marked."""
    spec = load_path(SPECS_DIR / f"{api}.yaml")
    ids = [op.operation_id for op in spec.operations]
    assert len(ids) == len(set(ids))
    for op in spec.operations:
        where = f"{op.method.upper()} {op.path}"
        assert op.raw.get("operationId"), where
        assert op.rate_buckets and "all" in op.rate_buckets, where
        codes = set(op.responses)
        assert {"400", "429"} <= codes, where
        if not op.public:
            assert "401" in codes, where
        if op.scopes:
            assert "403" in codes, where
            assert all(s in op.description for s in op.scopes), where
        if any(p.location == "path" for p in op.params):
            assert "404" in codes, where
        if op.body_schema is not None:
            assert {"413", "415"} <= codes, where
        for code, resp in op.responses.items():
            if code.startswith("4") and code != "404":
                assert resp.has_body, f"{where} {code} has no body in the API's error envelope"


@pytest.mark.parametrize("api", APIS)
def test_create_operations_link_to_what_follows(api: str) -> None:
    spec = load_path(SPECS_DIR / f"{api}.yaml")
    creates = [
        op
        for op in spec.operations
        if (op.resource is not None and op.resource.op == "create")
        or (op.method == "post" and "201" in op.responses)
    ]
    assert creates
    ids = {op.operation_id for op in spec.operations}
    for op in creates:
        links = op.responses["201"].links
        # A join token is consumed inside another request's body, which links cannot express.
        assert links or op.operation_id == "createNodeJoinToken", f"{op.operation_id} has no links"
        for link in links.values():
            assert link["operationId"] in ids


@pytest.mark.parametrize("api", APIS)
def test_inferred_parts_say_why(api: str) -> None:
    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("x-inferred") is True:
                assert str(node.get("x-inferred-reason", "")).strip(), f"{where}: x-inferred without a reason"
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}/{i}")

    walk(yaml.safe_load((SPECS_DIR / f"{api}.yaml").read_text()), api)


def test_nurosentrix_scopes_are_the_documented_table() -> None:
    spec = load_path(SPECS_DIR / "nurosentrix.yaml")
    assert list(spec.scopes) == [
        "servers:read",
        "servers:write",
        "instances:read",
        "instances:write",
        "instances:actions",
        "backups:read",
        "backups:write",
        "backups:restore",
        "settings:read",
        "settings:write",
    ]


@pytest.mark.parametrize(
    ("api", "path", "param", "default", "maximum"),
    [
        ("nurosentrix", "/servers", "per_page", 20, 100),
        ("cloudnexus", "/servers", "per_page", 20, 100),
        ("cloudnexus-io", "/instances", "limit", 20, 100),
    ],
)
def test_documented_pagination_defaults_and_maxima(
    api: str, path: str, param: str, default: int, maximum: int
) -> None:
    spec = load_path(SPECS_DIR / f"{api}.yaml")
    op = next(o for o in spec.operations if o.path == path and o.method == "get")
    p = next(p for p in op.params if p.name == param)
    assert p.schema.get("default") == default
    assert p.schema.get("maximum") == maximum
