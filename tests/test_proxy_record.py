"""`--record FILE`: app traffic through the proxy to a sandbox becomes a seed; a new sandbox
started from it answers the same GETs with the same bodies. Credentials and secrets stay out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from contract import load
from mock_server.testing import SandboxServer
from proxy.app import ProxyApp
from proxy.record import Recorder
from tests.proxy_helpers import serve

SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1", "size": "s-4vcpu-8gb"}
INSTANCE = {
    "name": "production-crm",
    "odoo_version": "17.0",
    "edition": "community",
    "database_name": "production_crm",
    "admin_email": "admin@example.com",
    "domain": "crm.example.com",
}
PROJECT = {
    "name": "my-app",
    "github_repo": "octocat/my-app",
    "dockerfile": "Dockerfile",
    "build_context": ".",
}


@pytest.fixture
def original() -> Iterator[SandboxServer]:
    with SandboxServer(apis=["nurosentrix", "nexos"], async_delay=0, rate_limit=False) as server:
        yield server


def _recorded(
    sandbox: SandboxServer, api: str, traffic: list[tuple[str, str, str, object]]
) -> tuple[Recorder, dict[str, str], list[tuple[str, str]]]:
    """Send `traffic` [(account, method, path, json)] through a recording proxy; returns the
    recorder, the tokens used per account and the GETs made (account, path)."""
    contract = load(api)
    recorder = Recorder(contract)
    app = ProxyApp(contract, sandbox.base_url(api), observer=recorder.observe)
    tokens: dict[str, str] = {}
    gets = []
    with serve(app) as origin, httpx.Client() as client:
        base = origin + contract.base_path
        ids: dict[str, str] = {}
        for account, method, path, body in traffic:
            token = tokens.setdefault(account, sandbox.token(api, account=account))
            path = path.format(**ids)
            if isinstance(body, dict):
                body = {k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()}
            r = client.request(method, base + path, json=body, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code < 300, r.text
            if method == "POST" and r.status_code == 201:
                data = contract.data(r.json()) or r.json()
                ids[f"{account}_{len(ids)}"] = data["id"]
            if method == "GET":
                gets.append((account, path))
    assert app.status()["violations"] == 0
    return recorder, tokens, gets


def _same_answers(
    original: SandboxServer,
    api: str,
    recorder: Recorder,
    tokens: dict[str, str],
    gets: list[tuple[str, str]],
    tmp_path: Path,
) -> dict:
    seed_file = tmp_path / "seed.yaml"
    recorder.write(seed_file)
    text = seed_file.read_text()
    for token in tokens.values():
        assert token not in text  # fresh sandbox tokens only
    seed = yaml.safe_load(text)
    new_tokens = {f"recorded-{i + 1}": t["token"] for i, t in enumerate(seed["tokens"])}
    by_account = {acct: new_tokens[f"recorded-{i + 1}"] for i, acct in enumerate(tokens)}
    with (
        SandboxServer(apis=[api], async_delay=0, rate_limit=False, seed=seed_file) as replay,
        httpx.Client() as c,
    ):
        for account, path in gets:
            want = c.get(
                original.base_url(api) + path, headers={"Authorization": f"Bearer {tokens[account]}"}
            )
            got = c.get(
                replay.base_url(api) + path, headers={"Authorization": f"Bearer {by_account[account]}"}
            )
            assert (got.status_code, got.json()) == (want.status_code, want.json()), path
    return dict(seed)


def test_nurosentrix_round_trip_keeps_links_and_accounts(original: SandboxServer, tmp_path: Path) -> None:
    traffic = [
        ("acme", "POST", "/servers", SERVER),  # acme_0
        ("acme", "POST", "/servers", {**SERVER, "name": "web-2"}),  # acme_1
        ("acme", "POST", "/instances", {**INSTANCE, "server_id": "{acme_0}"}),  # acme_2
        ("acme", "POST", "/instances/{acme_2}/backups", None),  # acme_3
        ("acme", "DELETE", "/servers/{acme_1}", None),
        ("globex", "POST", "/servers", {**SERVER, "name": "other"}),  # globex_4
        ("acme", "GET", "/servers", None),
        ("acme", "GET", "/servers/{acme_0}", None),
        ("acme", "GET", "/instances", None),
        ("acme", "GET", "/instances/{acme_2}", None),
        ("acme", "GET", "/instances/{acme_2}/backups", None),
        ("acme", "GET", "/backups/{acme_3}", None),
        ("globex", "GET", "/servers", None),
        ("globex", "GET", "/servers/{globex_4}", None),
    ]
    recorder, tokens, gets = _recorded(original, "nurosentrix", traffic)
    seed = _same_answers(original, "nurosentrix", recorder, tokens, gets, tmp_path)
    assert [(t["account"], t["mode"]) for t in seed["tokens"]] == [
        ("recorded-1", "test"),
        ("recorded-2", "test"),
    ]
    collections = [r["collection"] for r in seed["resources"]]
    assert collections == ["servers", "servers", "instances", "backups"]  # parents first, deleted gone


def test_nexos_secrets_are_dropped(original: SandboxServer, tmp_path: Path) -> None:
    traffic = [
        ("acme", "POST", "/projects", PROJECT),
        ("acme", "GET", "/projects", None),
        ("acme", "GET", "/projects/{acme_0}", None),
    ]
    recorder, tokens, gets = _recorded(original, "nexos", traffic)
    seed = _same_answers(original, "nexos", recorder, tokens, gets, tmp_path)
    assert "webhook_secret" not in str(seed) and "whsec_" not in str(seed)
