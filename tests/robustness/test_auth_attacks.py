"""Auth attacks: forged, unsigned, re-signed and expired session JWTs (bearer and cookie);
tokens, API keys and sessions of one API on every operation of the others; secrets stored only
as hashes; no secret in the server's log (at --log-level debug) or in /_mock/requests.

Already covered elsewhere, not repeated: missing/malformed/unknown/revoked/over-long tokens and
one other API's token on one collection (tests/test_engine_auth.py); Nurosentrix alg:none,
tampered and expired JWTs (tests/test_nurosentrix.py); Nexos forged, over-long and wrong-mode API
keys (tests/test_nexos.py). Live tokens against test data: tests/robustness/test_bola.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from mock_server.sessions import SECRETS, _key
from mock_server.users import save_user
from tests.apis import error_code
from tests.conftest import Harness, all_specs
from tests.robustness.support import count, fill, live_seen, populate, server

SPECS = {s.name: s for s in all_specs()}
PASSWORD = "correct horse battery staple"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_jwt(header: dict[str, Any], claims: dict[str, Any], key: str | None = None) -> str:
    """A JWT built by hand: unsigned, or signed with HMAC of the header's `alg` (HSnnn)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b""
    if key is not None:
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[header["alg"]]
        signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _session(h: Harness, api: str) -> tuple[str, dict[str, Any]]:
    """A genuine session JWT of `api` for a user of account `acme`, and its claims."""
    user = save_user(
        h.sandbox.store,
        h.sandbox.ids,
        {
            "api": api,
            "email": f"u@{api}.example.com",
            "password": PASSWORD,
            "login": "user",
            "account": "acme",
        },
    )
    if api == "nurosentrix":
        r = h.client(api).post("/auth/login", json={"email": user["email"], "password": PASSWORD})
        token = r.json()["data"]["token"]
    else:
        browser = h.client(api)
        start = browser.get("/auth/github", params={"login": "user"})
        qs = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
        done = browser.get("/auth/github/callback", params=qs)
        token = done.cookies["nexos_session"]
    return token, jwt.decode(token, options={"verify_signature": False})


def _forgeries(h: Harness, api: str, genuine: str, claims: dict[str, Any]) -> dict[str, str]:
    key = _key(h.sandbox)
    now = int(h.sandbox.clock.now())
    other_api = "nexos" if api == "nurosentrix" else "nurosentrix"
    stranger = save_user(h.sandbox.store, h.sandbox.ids, {"api": other_api, "email": "s@example.com"})
    head, payload, sig = genuine.split(".")
    raised = {**claims, "sub": "usr_someone_else"}
    return {
        "alg none": jwt.encode(claims, key="", algorithm="none"),
        "alg NONE": _raw_jwt({"alg": "NONE", "typ": "JWT"}, claims),
        "alg nOnE, genuine signature": _raw_jwt({"alg": "nOnE", "typ": "JWT"}, claims) + sig,
        "wrong key": jwt.encode(claims, "not-the-key-not-the-key-not-the-key!", algorithm="HS256"),
        "empty key": _raw_jwt({"alg": "HS256", "typ": "JWT"}, claims),
        "right key, HS512": _raw_jwt({"alg": "HS512", "typ": "JWT"}, claims, key),
        "right key, HS384": _raw_jwt({"alg": "HS384", "typ": "JWT"}, claims, key),
        "right key, expired": jwt.encode({**claims, "exp": now - 1}, key, algorithm="HS256"),
        "right key, expires now": jwt.encode({**claims, "exp": now}, key, algorithm="HS256"),
        "right key, no exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, key, algorithm="HS256"
        ),
        "right key, no iat": jwt.encode(
            {k: v for k, v in claims.items() if k != "iat"}, key, algorithm="HS256"
        ),
        "right key, no sub": jwt.encode(
            {k: v for k, v in claims.items() if k != "sub"}, key, algorithm="HS256"
        ),
        "right key, exp as string": jwt.encode({**claims, "exp": str(now + 99)}, key, algorithm="HS256"),
        "right key, exp as float": jwt.encode({**claims, "exp": now + 99.5}, key, algorithm="HS256"),
        "right key, other API": jwt.encode({**claims, "api": other_api}, key, algorithm="HS256"),
        "right key, no api": jwt.encode(
            {k: v for k, v in claims.items() if k != "api"}, key, algorithm="HS256"
        ),
        "right key, unknown user": jwt.encode(raised, key, algorithm="HS256"),
        "right key, other API's user": jwt.encode({**claims, "sub": stranger["id"]}, key, algorithm="HS256"),
        "payload swapped, signature kept": f"{head}.{_b64(json.dumps(raised).encode())}.{sig}",
        "signature stripped": f"{head}.{payload}.",
        "signature truncated": f"{head}.{payload}.{sig[:-4]}",
        "two signatures": f"{genuine}.{sig}",
        "kid traversal, wrong key": jwt.encode(
            claims, "k" * 32, algorithm="HS256", headers={"kid": "../../../../dev/null", "jku": "http://evil"}
        ),
        "5000 characters": genuine + "A" * 5000,
        "not base64": "!!!.???.###",
    }


@pytest.mark.parametrize("api", ["nurosentrix", "nexos"])
def test_forged_and_expired_session_jwts_are_401_as_bearer_and_cookie(harness: Harness, api: str) -> None:
    genuine, claims = _session(harness, api)
    path = "/servers" if api == "nurosentrix" else "/projects"
    assert harness.client(api, genuine).get(path).status_code == 200
    forgeries = _forgeries(harness, api, genuine, claims)
    for label, token in forgeries.items():
        for client in (
            harness.client(api, token),
            harness.client(api, cookies={"nexos_session": token}),  # only Nexos reads the cookie
        ):
            r = client.get(path)
            count("auth_attacks")
            assert r.status_code == 401, (label, r.status_code, r.text)
            assert error_code(r.json()) == "UNAUTHORIZED"
    if api == "nurosentrix":  # the cookie is Nexos' only: a genuine session there is refused too
        assert harness.client(api, cookies={"nexos_session": genuine}).get(path).status_code == 401
    assert harness.client(api, genuine).get(path).status_code == 200  # still fine


def test_the_jwt_secret_is_one_per_sandbox_and_never_served(harness: Harness) -> None:
    """Both APIs sign with one key, so the `api` claim is what keeps their sessions apart."""
    nuro, _ = _session(harness, "nurosentrix")
    nexos, _ = _session(harness, "nexos")
    assert harness.client("nexos", nuro).get("/projects").status_code == 401
    assert harness.client("nurosentrix", nexos).get("/servers").status_code == 401
    assert harness.client("nexos", cookies={"nexos_session": nuro}).get("/projects").status_code == 401
    secret = harness.sandbox.store.get(SECRETS, "jwt")
    assert secret is not None
    control = harness.client()
    for path in ("/_mock/tokens", "/_mock/requests", "/_mock/health", "/_mock/clock"):
        assert secret["value"] not in control.get(path).text
    count("auth_attacks", 3)


@pytest.mark.parametrize("api", list(SPECS))
def test_every_credential_of_another_api_is_401_on_every_operation(make_harness: Any, api: str) -> None:
    h: Harness = make_harness(rate_limit=False)
    foreign: dict[str, str] = {}
    for other in SPECS:
        if other != api:
            foreign[f"{other} token"] = h.token(other)
            foreign[f"{other} live token"] = h.token(other, mode="live")
    if api != "nexos":
        foreign["nexos API key"] = h.api("nexos").post("/auth/api-keys", json={"name": "k"}).json()["key"]
        foreign["nexos session"] = _session(h, "nexos")[0]
    if api != "nurosentrix":
        foreign["nurosentrix session"] = _session(h, "nurosentrix")[0]
    ids = populate(h, api, "default")
    for op in SPECS[api].operations:
        if op.public:
            continue
        path = fill(op, ids)
        for label, token in foreign.items():
            r = h.client(api, token).request(op.method.upper(), path, json={} if op.body_schema else None)
            count("auth_attacks")
            assert r.status_code == 401, (op.operation_id, label, r.status_code)
            assert error_code(r.json()) == "UNAUTHORIZED"


def _secrets_of_a_busy_sandbox(h: Harness) -> dict[str, str]:
    """Mint, use and log in with every kind of credential the sandbox knows; each secret."""
    out = {
        "token": h.token("nurosentrix"),
        "seeded token": h.sandbox.mint("cloudnexus", value="cn_test_sk_seeded_secret_value_0001")[0],
        "live token": h.token("cloudnexus-io", mode="live"),
    }
    nexos = h.api("nexos")
    out["api key"] = nexos.post("/auth/api-keys", json={"name": "ci"}).json()["key"]
    assert h.client("nexos", out["api key"]).get("/projects").status_code == 200
    out["join token"] = nexos.post("/nodes/join-token").json()["token"]
    out["nurosentrix session"], _ = _session(h, "nurosentrix")
    out["nexos session"], _ = _session(h, "nexos")
    out["password"] = PASSWORD
    return out


def test_tokens_keys_and_passwords_are_stored_hashed_only(tmp_path: Path) -> None:
    from mock_server.app import SandboxApp
    from mock_server.clock import FrozenClock
    from mock_server.sandbox import Sandbox
    from mock_server.store_tinydb import TinyDBStore

    class FileHarness(Harness):
        def __init__(self) -> None:
            self.clock = FrozenClock()
            self.sandbox = Sandbox(
                all_specs(), TinyDBStore(tmp_path / "s.json"), clock=self.clock, async_delay=0
            )
            self.app = SandboxApp(self.sandbox)
            self._clients = []

    h = FileHarness()
    secrets = _secrets_of_a_busy_sandbox(h)
    h.close()
    stored = "".join(p.read_text() for p in tmp_path.glob("s.json*"))  # the file and its journal
    for label, secret in secrets.items():
        assert secret not in stored, label
        assert secret[:-4] not in stored, label  # a mask shows at most the prefix and the last 4
    h.sandbox.store.close()  # compacts the journal into the file
    data = json.loads((tmp_path / "s.json").read_text())
    hashes = [t["hash"] for t in data["_mock:tokens"].values()]
    assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", x) for x in hashes)
    assert all(k["_hash"].startswith("$2") for k in data["nexos:api_keys"].values())
    assert all(
        u["password_hash"].startswith("$2") for u in data["_mock:users"].values() if "password_hash" in u
    )
    listed = h.client().get("/_mock/tokens").text
    for label, secret in secrets.items():
        assert secret not in listed, label


@pytest.mark.slow
def test_no_secret_in_the_server_log_or_the_request_log(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "users:\n"
        "  - {api: nurosentrix, id: usr_log, email: log@example.com, account: acme,\n"
        f"     password: '{PASSWORD}'}}\n"
    )
    with server(tmp_path, "--memory", "--log-level", "debug", "--seed", str(seed)) as proc:
        base = proc.base

        def mint(api: str, **kw: str) -> str:
            r = live_seen(httpx.post(f"{base}/_mock/tokens", json={"api": api, **kw}))
            return str(r.json()["token"])

        def auth(token: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token}"}

        secrets = {"token": mint("nurosentrix"), "live token": mint("cloudnexus", mode="live")}
        secrets["chosen token"] = mint("cloudnexus-io", token="cnio_test_chosen_by_the_caller_0001")
        nx = mint("nexos")
        n = f"{base}/nurosentrix/api/v1"
        x = f"{base}/nexos/api"
        # sessions, keys, a password: good and bad
        login = live_seen(
            httpx.post(f"{n}/auth/login", json={"email": "log@example.com", "password": PASSWORD})
        )
        secrets["session"] = login.json()["data"]["token"]
        secrets["password"] = PASSWORD
        secrets["long password"] = "P" * 300 + "-secret"
        secrets["typed password"] = "9876543210123"
        live_seen(
            httpx.post(
                f"{n}/auth/login", json={"email": "log@example.com", "password": secrets["long password"]}
            )
        )
        live_seen(
            httpx.post(
                f"{n}/auth/login",
                json={"email": "log@example.com", "password": int(secrets["typed password"])},
            )
        )
        live_seen(
            httpx.post(f"{n}/auth/login", json={"email": "log@example.com", "password": PASSWORD + "x"})
        )
        secrets["api key"] = live_seen(
            httpx.post(f"{x}/auth/api-keys", json={"name": "k"}, headers=auth(nx))
        ).json()["key"]
        live_seen(httpx.get(f"{x}/projects", headers=auth(secrets["api key"])))
        live_seen(httpx.get(f"{x}/projects", headers=auth(secrets["api key"] + "tampered")))
        secrets["join token"] = live_seen(httpx.post(f"{x}/nodes/join-token", headers=auth(nx))).json()[
            "token"
        ]
        live_seen(
            httpx.post(
                f"{x}/nodes/register",
                json={"token": secrets["join token"] + "x", "name": "n", "cpu": 1, "memory_mb": 1},
            )
        )
        project = live_seen(
            httpx.post(f"{x}/projects", json={"name": "p", "github_repo": "o/p"}, headers=auth(nx))
        ).json()
        secrets["webhook secret"] = project["webhook_secret"]
        secrets["env var value"] = "s3cr3t-env-value-1234567890"
        secrets["env var value, too long"] = "v" * 70_000
        for value in (secrets["env var value"], secrets["env var value, too long"], 4815162342):
            live_seen(
                httpx.put(
                    f"{x}/projects/{project['id']}/env-vars",
                    json={"key": "DB_PASSWORD", "value": value},
                    headers=auth(nx),
                )
            )
        secrets["numeric env value"] = "4815162342"
        for t in (secrets["token"], secrets["session"], "nsx_test_" + "u" * 32):
            live_seen(httpx.get(f"{n}/servers", headers=auth(t)))
            live_seen(httpx.get(f"{n}/servers", headers=auth(t), cookies={"nexos_session": t}))
        live_seen(httpx.get(f"{base}/cloudnexus/v1/servers", headers=auth(secrets["live token"])))
        live_seen(httpx.get(f"{base}/cloudnexus-io/v1/instances", headers=auth(secrets["chosen token"])))
        live_seen(httpx.get(f"{x}/auth/me", cookies={"nexos_session": secrets["session"]}))
        requests_log = httpx.get(f"{base}/_mock/requests", params={"limit": "500"}).text
        tokens_list = httpx.get(f"{base}/_mock/tokens").text
    server_log = proc.output()
    assert "Traceback" not in server_log
    assert len(json.loads(requests_log)["requests"]) >= 20
    for label, secret in secrets.items():
        assert secret not in requests_log, f"{label} in /_mock/requests"
        assert secret not in tokens_list, f"{label} in /_mock/tokens"
        assert secret not in server_log, f"{label} in the server log"
    count("secrets_checked", len(secrets))
