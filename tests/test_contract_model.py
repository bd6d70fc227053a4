"""One reading of the contract: the engine, the conformance suite and the load suite judge by
the very same compiled objects, and each element says where it comes from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import contract
from conformance.runner import load as conformance_load
from load.roles import ApiContract
from mock_server.clock import FrozenClock
from mock_server.ids import IdGenerator
from mock_server.sandbox import Sandbox
from tests.apis import APIS


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.mark.parametrize("api", APIS)
def test_engine_conformance_and_load_see_the_same_objects(api: str) -> None:
    sandbox = Sandbox(clock=FrozenClock(), ids=IdGenerator(seed=1))
    engine = sandbox.engines[api]
    judged = conformance_load(api, None)  # what `python -m conformance run --api` judges by
    loaded = ApiContract.load(api)  # what the load suite and the verifier drive
    assert engine.spec is judged is loaded.spec
    for kind, template in judged.templates.items():
        assert engine.envelope.templates[kind] is template.value, kind
    assert loaded.error_code_path == judged.error.locate("code")
    for op in judged.operations:
        routed, _, _ = engine.spec.match(op.method, _concrete(op.path))
        assert routed is op, op.label  # the engine serves the very operation the suites check
        assert loaded.op(op.operation_id) is op
        assert loaded.buckets_of(op) == list(op.buckets)
        assert all(a is b for a, b in zip(loaded.buckets_of(op), op.buckets, strict=True)), op.label
        limiter = engine.buckets[op.operation_id]
        assert [(b.name, b.limit, b.window) for b in limiter] == [
            (b.name, b.limit, b.window) for b in op.buckets
        ], op.label
        assert routed.scopes is op.scopes and routed.documented_statuses is op.documented_statuses
        for status in op.documented_statuses:
            assert judged.template_for(op, status) is judged.template_for(routed, status)


def test_a_shorter_window_for_the_load_suite_keeps_the_documented_buckets() -> None:
    loaded = ApiContract.load("nurosentrix", window=3)
    model = contract.load("nurosentrix")
    assert loaded.spec is model
    assert {b.window for b in loaded.buckets.values()} == {3.0}
    assert {b.window for b in model.buckets.values()} == {60.0}


def test_provenance_follows_the_marks() -> None:
    nuro = contract.load("nurosentrix")
    update = nuro.by_id("updateServer")
    assert update is not None and update.provenance.inferred
    assert "no update endpoint is documented" in (update.provenance.reason or "")
    assert all(p.provenance.inferred for p in update.params)  # a mark covers what lies beneath it
    listing = nuro.by_id("listServers")
    assert listing is not None and listing.provenance.documented
    create = nuro.by_id("createServer")
    assert create is not None and create.provenance.documented
    assert create.responses["201"].provenance.inferred  # "The document shows no status code"
    assert create.responses["201"].provenance.reason == (
        "The document shows no status code; 201 Created per convention."
    )


def test_bucket_and_pagination_provenance_from_the_sandbox_block() -> None:
    nuro, io, nexos = (contract.load(n) for n in ("nurosentrix", "cloudnexus-io", "nexos"))
    assert all(b.provenance.documented for b in nuro.buckets.values())  # document 000's table
    assert all(b.provenance.inferred for b in io.buckets.values())  # "the document states none"
    assert "no rate limit" in (io.buckets["all"].provenance.reason or "")
    assert nexos.pagination.provenance.inferred and nuro.pagination.provenance.documented
    # the documented view verifies only limits the documents state
    assert nuro.documented.buckets == nuro.buckets and io.documented.buckets == {}
    assert all(op.buckets == () for op in io.documented.operations)


def test_a_spec_is_compiled_once_and_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "nexos.yaml"
    path.write_text((contract.SPECS_DIR / "nexos.yaml").read_text())
    first = contract.load_path(path)
    assert contract.load_path(path) is first
    path.write_text(path.read_text().replace("title: Nexos", "title: Nexos (edited)", 1))
    again = contract.load_path(path)
    assert again is not first and again.title != first.title


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (("x-rate-limit: [all]", "x-rate-limit: [al]"), "unknown rate-limit bucket al"),
        (("all: {limit: 100, window: 60}", "all: {limit: 0, window: 60}"), "rate-limits.all.limit: 0"),
        (("$ref: '#/components/schemas/", "$ref: '#/components/schemaz/"), "points at nothing"),
    ],
)
def test_a_broken_spec_is_one_clear_error(tmp_path: Path, mutate: tuple[str, str], message: str) -> None:
    path = tmp_path / "nurosentrix.yaml"
    text = (contract.SPECS_DIR / "nurosentrix.yaml").read_text()
    changed = text.replace(*mutate, 1)
    assert changed != text
    path.write_text(changed)
    with pytest.raises(contract.SpecError, match=re.escape(message)):
        contract.load_path(path)
