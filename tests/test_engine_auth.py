"""Auth, scopes and tenancy: the same rules on all four APIs, from the engine."""

from __future__ import annotations

import pytest

from tests.apis import COLLECTIONS, IDS, Collection, error_code
from tests.conftest import Harness

pytestmark = pytest.mark.parametrize("col", COLLECTIONS, ids=IDS)


def test_missing_malformed_unknown_and_revoked_tokens_get_401(harness: Harness, col: Collection) -> None:
    spec = harness.sandbox.specs[col.api]
    prefix = spec.token_prefixes["test"]
    token = harness.token(col.api)
    assert harness.client(col.api, token).get(col.path).status_code == 200
    cases = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {token}"},
        "empty bearer": {"Authorization": "Bearer "},
        "malformed": {"Authorization": "Bearer \x01\x02"},
        "unknown": {"Authorization": f"Bearer {prefix}doesnotexist000000000000000000"},
        "too long": {"Authorization": "Bearer " + prefix + "x" * 5000},
    }
    anon = harness.client(col.api)
    for label, headers in cases.items():
        r = anon.get(col.path, headers=headers)
        assert r.status_code == 401, label
        assert error_code(r.json()) == "UNAUTHORIZED", label
        assert r.json()["error"]["message"] == "Invalid or missing authentication token"
    assert harness.sandbox.tokens.revoke(token)
    r = harness.client(col.api, token).get(col.path)
    assert r.status_code == 401


def test_a_token_of_another_api_is_refused(harness: Harness, col: Collection) -> None:
    other = next(c for c in COLLECTIONS if c.api != col.api)
    r = harness.client(col.api, harness.token(other.api)).get(col.path)
    assert r.status_code == 401


def test_nurosentrix_401_body_is_the_documented_one(harness: Harness, col: Collection) -> None:
    if col.api != "nurosentrix":
        pytest.skip("documented body is Nurosentrix's")
    r = harness.client("nurosentrix").get("/servers")
    assert r.json() == {
        "success": False,
        "error": {"code": "UNAUTHORIZED", "message": "Invalid or missing authentication token"},
    }


def test_missing_scope_is_403_naming_it(harness: Harness, col: Collection) -> None:
    if col.write_scope is None:
        pytest.skip(f"{col.api} API keys carry no scopes")
    reader = harness.api(col.api, scopes=[col.read_scope])
    assert reader.get(col.path).status_code == 200
    r = reader.post(col.path, json=col.new())
    assert r.status_code == 403
    assert error_code(r.json()) == "FORBIDDEN"
    assert r.json()["error"]["message"] == f"Token does not have permission: {col.write_scope}"
    assert col.items(harness.api(col.api).get(col.path).json()) == []  # nothing was created


def test_other_accounts_and_modes_never_see_each_other(harness: Harness, col: Collection) -> None:
    owner = harness.api(col.api)
    created = col.data(owner.post(col.path, json=col.new()).json())
    rid = created["id"]
    for other in (harness.api(col.api, account="other"), harness.api(col.api, mode="live")):
        assert col.items(other.get(col.path).json()) == []
        assert other.get(f"{col.path}/{rid}").status_code == 404
        assert other.delete(f"{col.path}/{rid}").status_code == 404
        assert error_code(other.get(f"{col.path}/{rid}").json()) == "NOT_FOUND"
    assert owner.get(f"{col.path}/{rid}").status_code == 200
    assert [i["id"] for i in col.items(owner.get(col.path).json())] == [rid]


def test_live_tokens_carry_the_live_prefix(harness: Harness, col: Collection) -> None:
    prefixes = harness.sandbox.specs[col.api].token_prefixes
    assert harness.token(col.api, mode="live").startswith(prefixes["live"])
    assert harness.token(col.api).startswith(prefixes["test"])
