"""`Prefer: code=…, example=…, delay=…`: a test chooses the response (Prism-compatible), only
among what the spec documents, with test-mode tokens, never changing stored state."""

from __future__ import annotations

from typing import Any

import pytest

from mock_server import forced
from tests.conftest import Harness, all_specs

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


def _servers(h: Harness) -> int:
    return sum(1 for _ in h.sandbox.store.scan(h.sandbox.resources["nurosentrix"].table("servers")))


def test_every_documented_error_status_of_every_operation_can_be_forced(make_harness: Any) -> None:
    """In the API's own envelope, with the spec's code for that status; self-check on (the
    harness fails the test on any answer outside the contract)."""
    harness = make_harness(rate_limit=False)
    seen = 0
    for spec in all_specs():
        token = harness.token(spec.name)
        client = harness.client(spec.name, token)
        for op in spec.operations:
            if op.public:
                continue
            path = op.path
            for p in op.path_params:
                path = path.replace("{" + p.name + "}", "x1")
            for code in op.responses:
                if not (code.isdigit() and int(code) >= 400):
                    continue
                r = client.request(op.method.upper(), path, headers={"Prefer": f"code={code}"})
                assert r.status_code == int(code), (op.operation_id, code, r.text)
                assert spec.error_code(r.json()) is not None, r.text
                seen += 1
    assert seen > 100


def test_a_forced_429_has_coherent_rate_limit_headers(harness: Harness) -> None:
    api = harness.api("nurosentrix")
    r = api.get("/servers", headers={"Prefer": "code=429"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
    assert r.headers["Retry-After"] == "1"
    assert r.headers["X-RateLimit-Remaining"] == "0" and r.headers["X-RateLimit-Reset"] == "1"
    assert "r=0;t=1" in r.headers["RateLimit"]
    assert api.get("/servers").status_code == 200  # the real limiter was not used up


def test_an_undocumented_code_is_a_400_naming_the_documented_ones(harness: Harness) -> None:
    r = harness.api("nurosentrix").get("/servers", headers={"Prefer": "code=503"})
    assert r.status_code == 400
    body = r.json()["error"]
    assert body["code"] == "VALIDATION_ERROR"
    assert "503 is not documented for listServers" in body["message"]
    documented = sorted(c for c in harness.sandbox.specs["nurosentrix"].by_id("listServers").responses)
    assert f"documented: {', '.join(documented)}" in body["message"]


def test_cloudnexus_documents_500_so_it_can_be_forced_with_its_example_code(harness: Harness) -> None:
    r = harness.api("cloudnexus").get("/servers", headers={"Prefer": "code=500"})
    assert r.status_code == 500
    assert r.json()["status"] == "error" and r.json()["error"]["code"] == "INTERNAL_ERROR"
    assert r.json()["meta"]["request_id"] == r.headers["X-Request-ID"]


def test_a_success_code_answers_the_documented_example_and_stores_nothing(harness: Harness) -> None:
    api = harness.api("cloudnexus")
    op = harness.sandbox.specs["cloudnexus"].by_id("createServer")
    assert op is not None
    before = list(harness.sandbox.store.tables())
    r = api.post("/servers", json={"name": "x"}, headers={"Prefer": "code=201"})
    assert r.status_code == 201
    assert r.json() == op.response(201).examples[0]  # type: ignore[union-attr]
    assert list(harness.sandbox.store.tables()) == before
    assert api.get("/servers").json()["meta"]["total"] == 0


def test_forced_errors_never_change_state(harness: Harness) -> None:
    api = harness.api("nurosentrix")
    r = api.post("/servers", json=SERVER, headers={"Prefer": "code=413"})
    assert r.status_code == 413 and _servers(harness) == 0
    assert api.post("/servers", json=SERVER).status_code == 201 and _servers(harness) == 1


def test_example_by_name(harness: Harness) -> None:
    """Specs name a lone `example` "example"; `examples.<name>` keep their own names."""
    op = harness.sandbox.specs["cloudnexus-io"].by_id("getInstance")
    assert op is not None and "example" in op.responses["200"].named_examples
    api = harness.api("cloudnexus-io")
    r = api.get("/instances/inst_x1", headers={"Prefer": "example=example"})
    assert r.status_code == 200 and r.json() == op.responses["200"].named_examples["example"]
    r = api.get("/instances/inst_x1", headers={"Prefer": 'example="no-such-example"'})
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "no example 'no-such-example'" in message and "its examples: example" in message


def test_named_examples_are_kept_by_name() -> None:
    from contract.compile import _named_examples

    media = {"example": 1, "examples": {"busy": {"value": 2}, "idle": {"summary": "s", "value": 3}}}
    assert _named_examples(media) == {"example": 1, "busy": 2, "idle": 3}


def test_example_and_code_together(harness: Harness) -> None:
    api = harness.api("cloudnexus")
    r = api.get("/servers", headers={"Prefer": "code=401, example=example"})
    assert r.status_code == 401
    op = harness.sandbox.specs["cloudnexus"].by_id("listServers")
    assert op is not None and r.json() == op.responses["401"].named_examples["example"]
    r = api.get("/servers", headers={"Prefer": "code=404; example=example"})
    assert r.status_code == 400  # listServers documents no 404


def test_delay_waits_then_answers_normally(harness: Harness) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    harness.sandbox.engines["nurosentrix"].sleep = sleep
    api = harness.api("nurosentrix")
    r = api.post("/servers", json=SERVER, headers={"Prefer": "delay=250"})
    assert r.status_code == 201 and slept == [0.25] and _servers(harness) == 1
    r = api.get("/servers", headers={"Prefer": "delay=1500, code=429"})
    assert r.status_code == 429 and slept == [0.25, 1.5]


@pytest.mark.parametrize(
    "header", ["code=abc", "code=99", "code=2000", "delay=-1", "delay=600000", "code=200 junk"]
)
def test_a_malformed_prefer_is_a_400(harness: Harness, header: str) -> None:
    r = harness.api("nurosentrix").get("/servers", headers={"Prefer": header})
    assert r.status_code == 400, header
    assert "Prefer" in str(r.json()["error"]["details"])  # nurosentrix: one `{field, reason}`


def test_unknown_preferences_are_ignored(harness: Harness) -> None:
    r = harness.api("nurosentrix").get("/servers", headers={"Prefer": "return=minimal, respond-async"})
    assert r.status_code == 200


def test_live_tokens_get_the_real_answer(harness: Harness) -> None:
    """A live-mode token stands for production, which ignores Prefer."""
    live = harness.client("nurosentrix", harness.token("nurosentrix", mode="live"))
    assert live.get("/servers", headers={"Prefer": "code=429"}).status_code == 200
    assert live.get("/servers", headers={"Prefer": "code=503"}).status_code == 200


def test_scopes_and_auth_still_come_first(harness: Harness) -> None:
    read_only = harness.client("nurosentrix", harness.token("nurosentrix", scopes=["servers:read"]))
    r = read_only.post("/servers", json=SERVER, headers={"Prefer": "code=201"})
    assert r.status_code == 403
    anonymous = harness.client("nurosentrix")
    assert anonymous.get("/servers", headers={"Prefer": "code=200"}).status_code == 401


def test_parse_prefer() -> None:
    cases: dict[str, Any] = {
        "code=503": forced.Preference(503),
        'code=200, example="a b"': forced.Preference(200, "a b"),
        "delay=10;code=404": forced.Preference(404, None, 10),
        "": forced.Preference(),
    }
    for header, expected in cases.items():
        assert forced.parse_prefer(header) == expected
