"""The request log keeps each request's and response's body, bounded (4 KiB each, a slice on the
hot path), and shows them only when asked (`bodies=1`), secret-looking values masked; the log
pages back from the newest (`offset`, `total`)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from mock_server.bodies import BODY_BYTES, MASK, clip, shown
from tests.conftest import Harness

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


def test_bodies_are_shown_only_when_asked_and_secrets_never(harness: Harness) -> None:
    api = harness.api("nurosentrix")
    r = api.post("/servers", json={**SERVER, "api_key": "sk_hidden_value", "password": 'p"w'})
    assert r.status_code == 400
    ok = api.post("/servers", json=SERVER, headers={"X-Request-ID": "req_created"})
    assert ok.status_code in (201, 202)
    control = harness.client()
    plain = control.get("/_mock/requests").json()["requests"]
    assert all("request_body" not in e and "bodies" not in e for e in plain)  # as documented before
    page = control.get("/_mock/requests", params={"bodies": "1"}).json()
    refused, created = page["requests"]
    sent = refused["request_body"]["text"]
    assert "sk_hidden_value" not in sent and 'p\\"w' not in sent
    assert json.loads(sent) == {**SERVER, "api_key": MASK, "password": MASK}
    assert "VALIDATION_ERROR" in refused["response_body"]["text"]
    assert json.loads(created["response_body"]["text"])["data"]["name"] == "web-1"
    one = control.get("/_mock/requests", params={"request_id": "req_created", "bodies": "1"}).json()
    assert [e["request_id"] for e in one["requests"]] == ["req_created"] and one["total"] == 1


def test_the_log_pages_back_from_the_newest(harness: Harness) -> None:
    api = harness.api("nurosentrix")
    for i in range(7):
        api.get("/servers", headers={"X-Request-ID": f"req_{i}"})
    control = harness.client()

    def ids(**params: str) -> list[str]:
        return [e["request_id"] for e in control.get("/_mock/requests", params=params).json()["requests"]]

    assert ids(limit="3") == ["req_4", "req_5", "req_6"]
    assert ids(limit="3", offset="3") == ["req_1", "req_2", "req_3"]
    assert ids(limit="3", offset="6") == ["req_0"]
    assert ids(limit="3", offset="60") == []
    assert control.get("/_mock/requests", params={"limit": "3"}).json()["total"] == 7


def test_a_big_body_is_kept_bounded_and_says_so() -> None:
    kept = clip(b"x" * (BODY_BYTES * 10))
    assert kept is not None and len(kept[0]) == BODY_BYTES
    assert shown(kept) == {"text": "x" * BODY_BYTES, "bytes": BODY_BYTES * 10, "truncated": True}
    assert clip(b"") is None and clip(None) is None


def test_form_and_truncated_json_secrets_are_masked_too() -> None:
    form = shown(clip(b"grant_type=authorization_code&code=abc123&client_secret=s3&state=x"))
    assert (
        form is not None
        and form["text"] == f"grant_type=authorization_code&code={MASK}&client_secret={MASK}&state=x"
    )
    cut = shown(clip(b'{"name": "a", "access_token": "tok_very_long_and_cut'))
    assert cut is not None and "tok_very" not in cut["text"] and '"name": "a"' in cut["text"]


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_a_secret_field_of_any_value_is_masked(value: str) -> None:
    body = json.dumps({"client_secret": value, "kept": 1}).encode()
    text = (shown(clip(body)) or {})["text"]
    assert json.loads(text) == {"client_secret": MASK, "kept": 1}
