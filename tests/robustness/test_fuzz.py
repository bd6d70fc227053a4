"""Schemathesis-generated input, positive and negative, for every operation of every API, in
process: none is answered 5xx, every answer is within the contract (the harness self-check),
every 4xx is in the API's error envelope and leaves the store exactly as it was.

Half the cases of an operation with path parameters use the ids of real resources of the
caller's own account, so generated bodies reach the handlers instead of stopping at a 404.
Schemathesis' own CLI, positive data with all its checks against a live sandbox, is
tests/test_live_server.py::test_schemathesis_with_all_checks_finds_nothing."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from contract import available_specs
from tests.apis import APIS, error_code
from tests.conftest import Harness
from tests.robustness.support import count, param_resource, populate, snapshot

EXAMPLES = 20  # per operation and mode: ~2,500 requests in all
# Documented writes on a refusal: a failed OAuth callback burns its code, a failed node
# registration its join token (both single-use whatever the outcome).
BURNS = {"githubCallback", "registerNode"}


def _primitive(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, (int, float, str)):
        return str(v)
    return json.dumps(v)


def _send(h: Harness, case: Any, base: str) -> httpx.Response | None:
    kw = case.as_transport_kwargs(base_url=base)
    headers: dict[str, bytes] = {}
    for k, v in (kw.get("headers") or {}).items():
        try:
            k.encode("ascii")
            headers[k] = str(v).encode("latin-1")
        except UnicodeEncodeError:
            continue  # not sendable over HTTP/1.1 at all
    if kw.get("cookies"):
        headers["Cookie"] = "; ".join(f"{k}={_primitive(v)}" for k, v in kw["cookies"].items()).encode(
            "utf-8"
        )
    params = {
        k: [_primitive(x) for x in v] if isinstance(v, list) else _primitive(v)
        for k, v in (kw.get("params") or {}).items()
    }
    content: bytes | None = None
    if "json" in kw:
        content = json.dumps(kw["json"]).encode()
    elif "data" in kw:
        data = kw["data"]
        content = data if isinstance(data, bytes) else str(data).encode() if isinstance(data, str) else None
        if content is None:
            content = httpx.QueryParams(data).__str__().encode()
    try:
        return h.client().request(kw["method"], kw["url"], headers=headers, params=params, content=content)
    except (httpx.InvalidURL, UnicodeEncodeError, ValueError):
        return None  # httpx itself refuses to send it


def _operations(api: str) -> list[Any]:
    doc = yaml.safe_load(available_specs()[api].read_text())
    schema = schemathesis.openapi.from_dict(doc)
    ops = [r.ok() for r in schema.get_all_operations()]
    return sorted(ops, key=lambda o: (o.method.upper() == "DELETE", o.path.count("/"), o.label))


def _fuzz(h: Harness, strategy: Any, base: str, mode: str, operation_id: str, tried: dict[str, int]) -> None:
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        before = snapshot(h.sandbox)
        r = _send(h, case, base)
        if r is None:
            tried["unsent"] += 1
            return
        tried[mode] += 1
        count(f"fuzz_answers_{r.status_code // 100}xx")
        assert r.status_code < 500, (case.as_curl_command(), r.status_code, r.text[:500])
        assert h.sandbox.self_check_failures == [], case.as_curl_command()
        if r.status_code >= 400 and r.status_code != 405:
            assert error_code(r.json()), r.text
            if operation_id not in BURNS:
                assert snapshot(h.sandbox) == before, (case.as_curl_command(), r.status_code)

    try:
        run()
    except Unsatisfiable:
        assert mode == "negative"  # nothing to get wrong: no parameters, no body (GET /regions)


@pytest.mark.slow
@pytest.mark.parametrize("api", APIS)
def test_fuzz_every_operation_positive_and_negative(make_harness: Any, api: str) -> None:
    h: Harness = make_harness(rate_limit=False)
    ids = populate(h, api, "fuzz")
    token = h.token(api, account="fuzz")
    base = "http://sandbox.test" + h.sandbox.specs[api].base_path
    compiled = {op.operation_id: op for op in h.sandbox.specs[api].operations}
    tried = {"positive": 0, "negative": 0, "unsent": 0}
    for operation in _operations(api):
        op = compiled[operation.definition.raw["operationId"]]
        auth = {"Authorization": f"Bearer {token}"}
        real = {p.name: ids[param_resource(op, p.name)] for p in op.params if p.location == "path"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies = [operation.as_strategy(generation_mode=mode, headers=auth)]
            if real:
                strategies.append(
                    operation.as_strategy(generation_mode=mode, headers=auth, path_parameters=real)
                )

            _fuzz(h, st.one_of(strategies), base, mode.value, op.operation_id, tried)
    count("fuzz_inputs_positive", tried["positive"])
    count("fuzz_inputs_negative", tried["negative"])
    count("fuzz_inputs", tried["positive"] + tried["negative"])
    assert tried["positive"] + tried["negative"] > EXAMPLES * len(compiled)
