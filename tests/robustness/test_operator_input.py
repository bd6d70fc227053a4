"""Every bad operator input is one clear line and exit 2, checked before anything is touched (no
traceback, no silent acceptance): `serve`'s flags, Redis URLs, seed and fault files, the proxy's
command line. Run in process (`main(argv)`: each case refuses before a server would start), so
the table stays fast. Measured before: of 57 cases, 6 tracebacks and 9 accepted silently, and a
start refused over a bad `--faults` file had already written the seed to the data file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mock_server.cli import main
from mock_server.lockfile import DataLock
from proxy.cli import run as proxy_run
from tests.robustness.support import count

TOKEN = "nsx_test_seeded_000000000001"
SERVER = {"name": "web-1", "provider": "digitalocean", "region": "nyc1"}


def _seed_file(tmp: Path, text: str, name: str = "seed.yaml") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def _good_seed(tmp: Path) -> str:
    return _seed_file(tmp, f"tokens:\n  - {{api: nurosentrix, token: {TOKEN}}}\n", "good-seed.yaml")


# (id, argv after `serve --data DATA --port 0`, text the refusal names); {tmp} is the folder
SERVE_CASES: list[tuple[str, list[str], str]] = [
    ("port too high", ["--port", "99999"], "--port 99999"),
    ("port negative", ["--port", "-1"], "--port -1"),
    ("rate window negative", ["--rate-window", "-1"], "--rate-window"),
    ("rate window zero", ["--rate-window", "0"], "--rate-window"),
    ("rate window nan", ["--rate-window", "nan"], "--rate-window"),
    ("rate window inf", ["--rate-window", "inf"], "--rate-window"),
    ("async delay negative", ["--async-delay", "-5"], "--async-delay"),
    ("async delay nan", ["--async-delay", "nan"], "--async-delay"),
    ("header timeout negative", ["--header-timeout", "-1"], "--header-timeout"),
    ("header timeout zero", ["--header-timeout", "0"], "--header-timeout"),
    ("body timeout negative", ["--body-timeout", "-3"], "--body-timeout"),
    ("keep-alive negative", ["--keep-alive-timeout", "-1"], "--keep-alive-timeout"),
    ("workers zero", ["--workers", "0"], "--workers"),
    ("workers with memory", ["--memory", "--workers", "2"], "--workers"),
    ("store not redis", ["--store", "http://localhost:6379/0"], "Redis URL"),
    ("store port out of range", ["--store", "redis://127.0.0.1:99999/0"], "port"),
    ("store port not a number", ["--store", "redis://127.0.0.1:abc/0"], "port"),
    ("store db not a number", ["--store", "redis://127.0.0.1:6379/abc"], "'abc'"),
    ("store db negative", ["--store", "redis://127.0.0.1:6379/-1"], "'-1'"),
    ("store no host", ["--store", "redis:///0"], "no host"),
    ("store password hidden", ["--store", "redis://:hunter2pass@127.0.0.1:99999/0"], ":***@"),
    ("cors not an origin", ["--cors", "localhost:3000"], "--cors"),
    ("cors empty", ["--cors", ""], "--cors"),
    ("admin token empty", ["--admin-token", ""], "admin token"),
    ("admin token short", ["--admin-token", "abc"], "admin token"),
    ("admin token file missing", ["--admin-token-file", "{tmp}/nope.txt"], "--admin-token-file"),
    ("admin token file empty", ["--admin-token-file", "{tmp}/empty.txt"], "--admin-token-file"),
    ("admin token twice", ["--admin-token", "abcdefghij", "--admin-token-file", "{tmp}/tok.txt"], "give one"),
    ("unknown api", ["--api", "nosuchapi"], "nosuchapi"),
    ("data is a folder", ["--data", "{tmp}"], "folder"),
    ("seed missing", ["--seed", "{tmp}/missing.yaml"], "missing.yaml"),
    ("seed deep brackets", ["--seed", "{tmp}/deep.yaml"], "deep.yaml"),
    ("seed not yaml", ["--seed", "{tmp}/broken.yaml"], "broken.yaml"),
    ("seed binary", ["--seed", "{tmp}/binary.yaml"], "binary.yaml"),
    ("seed a list", ["--seed", "{tmp}/list.yaml"], "mapping"),
    ("seed unknown key", ["--seed", "{tmp}/unknown-key.yaml"], "mapping"),
    ("seed tokens not a list", ["--seed", "{tmp}/tokens-map.yaml"], "tokens is a list"),
    ("seed token a number", ["--seed", "{tmp}/token-number.yaml"], "tokens[1]"),
    ("seed token missing", ["--seed", "{tmp}/token-missing.yaml"], "no token"),
    ("seed token entry a string", ["--seed", "{tmp}/token-string.yaml"], "tokens[0]"),
    ("seed scopes a string", ["--seed", "{tmp}/scopes-string.yaml"], "scopes is a list"),
    ("seed unknown scope", ["--seed", "{tmp}/scope-unknown.yaml"], "tokens[0]"),
    ("seed bad mode", ["--seed", "{tmp}/mode.yaml"], "mode is one of"),
    ("seed unknown api", ["--seed", "{tmp}/api.yaml"], "unknown api"),
    ("seed user without api", ["--seed", "{tmp}/user-noapi.yaml"], "users[0]"),
    ("seed user email a number", ["--seed", "{tmp}/user-email.yaml"], "users[0]"),
    ("seed resource data a list", ["--seed", "{tmp}/data-list.yaml"], "resources[0]"),
    ("seed resource unknown collection", ["--seed", "{tmp}/collection.yaml"], "no collection"),
    ("seed resource breaks schema", ["--seed", "{tmp}/schema.yaml"], "schema"),
    ("seed resource id a number", ["--seed", "{tmp}/id-number.yaml"], "data.id"),
    ("seed resource dangling parent", ["--seed", "{tmp}/parent.yaml"], "not found"),
    ("faults missing", ["--faults", "{tmp}/nofaults.yaml"], "nofaults.yaml"),
    ("faults not a list", ["--faults", "{tmp}/faults-map.yaml"], "list"),
    ("faults no effect", ["--faults", "{tmp}/faults-noeffect.yaml"], "effect"),
    ("faults negative latency", ["--faults", "{tmp}/faults-latency.yaml"], "latency"),
    ("faults with a good seed", ["--seed", "{good}", "--faults", "{tmp}/faults-noeffect.yaml"], "effect"),
]


def _resource(collection: str, data: str) -> str:
    return f"resources:\n  - {{api: nurosentrix, collection: {collection}, data: {data}}}\n"


FILES = {
    "empty.txt": "",
    "tok.txt": "abcdefghijkl\n",
    "deep.yaml": "[" * 100_000,
    "broken.yaml": "tokens: [\n  - {api: nurosentrix\n",
    "list.yaml": "- a\n- b\n",
    "unknown-key.yaml": "tokens: []\naccounts: []\n",
    "tokens-map.yaml": "tokens: {api: nurosentrix, token: x}\n",
    "token-number.yaml": (
        f"tokens:\n  - {{api: nurosentrix, token: {TOKEN}}}\n  - {{api: nurosentrix, token: 12345}}\n"
    ),
    "token-missing.yaml": "tokens:\n  - {api: nurosentrix}\n",
    "token-string.yaml": "tokens:\n  - nsx_test_abc\n",
    "scopes-string.yaml": f"tokens:\n  - {{api: nurosentrix, token: {TOKEN}, scopes: 'servers:read'}}\n",
    "scope-unknown.yaml": f"tokens:\n  - {{api: nurosentrix, token: {TOKEN}, scopes: [nope:nope]}}\n",
    "mode.yaml": f"tokens:\n  - {{api: nurosentrix, token: {TOKEN}, mode: production}}\n",
    "api.yaml": "tokens:\n  - {api: nosuch, token: x}\n",
    "user-noapi.yaml": "users:\n  - {email: a@example.com}\n",
    "user-email.yaml": "users:\n  - {api: nurosentrix, email: 42}\n",
    "data-list.yaml": "resources:\n  - {api: nurosentrix, collection: servers, data: [1, 2]}\n",
    "collection.yaml": "resources:\n  - {api: nurosentrix, collection: nothing, data: {}}\n",
    "schema.yaml": _resource("servers", "{name: 42, provider: x, region: y}"),
    "id-number.yaml": _resource("servers", "{id: 7, name: a, provider: b, region: c}"),
    "parent.yaml": _resource("backups", "{instance_id: ins_nothere}"),
    "faults-map.yaml": "{api: nurosentrix}\n",
    "faults-noeffect.yaml": "- {api: nurosentrix}\n",
    "faults-latency.yaml": "- {api: nurosentrix, latency_ms: -5}\n",
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00tokens")
    return tmp_path


def _refused(capsys: pytest.CaptureFixture[str], rc: int, *must: str) -> str:
    err = capsys.readouterr().err.strip()
    count("operator_input_cases")
    assert rc == 2, (rc, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for text in must:
        assert text in err, (text, err)
    count("operator_input_refused_cleanly")
    return err


@pytest.mark.parametrize(("label", "argv", "named"), SERVE_CASES, ids=[c[0] for c in SERVE_CASES])
def test_serve_refuses_bad_input_in_one_line_touching_nothing(
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    label: str,
    argv: list[str],
    named: str,
) -> None:
    monkeypatch.delenv("SANDBOX_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("SANDBOX_STORE", raising=False)
    data = folder / "state" / "sandbox.json"
    good = _good_seed(folder)
    args = [a.replace("{tmp}", str(folder)).replace("{good}", good) for a in argv]
    head = ["serve", "--data", str(data), "--port", "0"]
    if "--memory" in args or "--store" in args:
        head = ["serve", "--port", "0"]
    rc = main([*head, *args])
    err = _refused(capsys, rc, named)
    assert "hunter2pass" not in err
    assert not data.exists(), "the refused start wrote the data file"


def test_secrets_come_from_the_environment_or_a_file(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from mock_server.cli import DEFAULT_DATA, build_parser
    from mock_server.startup import resolve_secrets

    def parsed(*argv: str) -> argparse.Namespace:
        return build_parser().parse_args(["serve", *argv])

    monkeypatch.setenv("SANDBOX_ADMIN_TOKEN", "adm_from_environment")
    monkeypatch.setenv("SANDBOX_STORE", "redis://:pw@127.0.0.1:6379/3")
    args = parsed()
    assert resolve_secrets(args, DEFAULT_DATA) is None
    assert args.admin_token == "adm_from_environment" and args.store == "redis://:pw@127.0.0.1:6379/3"
    args = parsed("--admin-token-file", str(folder / "tok.txt"), "--memory")
    assert resolve_secrets(args, DEFAULT_DATA) is None
    assert args.admin_token == "abcdefghijkl" and args.store is None  # --memory wins over the variable
    args = parsed("--admin-token", "adm_on_the_command_line")
    assert resolve_secrets(args, DEFAULT_DATA) is None and args.admin_token == "adm_on_the_command_line"


def test_a_symlinked_data_path_finds_the_same_lock(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = folder / "real" / "sandbox.json"
    held = DataLock(real)
    held.acquire()
    try:
        link = folder / "link.json"
        link.parent.mkdir(exist_ok=True)
        real.write_text("")
        os.symlink(real, link)
        dir_link = folder / "dirlink"
        os.symlink(real.parent, dir_link)
        for path in (link, dir_link / "sandbox.json"):
            rc = main(["serve", "--data", str(path), "--port", "0"])
            _refused(capsys, rc, "already served", f"pid {os.getpid()}")
    finally:
        held.release()


PROXY_CASES = [
    ("upstream not a URL", ["--upstream", "not a url"], "--upstream"),
    ("upstream no scheme", ["--upstream", "localhost:8080/v1"], "--upstream"),
    ("upstream bad port", ["--upstream", "http://localhost:99999/v1"], "--upstream"),
    ("proxy port too high", ["--upstream", "http://localhost:8080", "--port", "70000"], "--port"),
    ("proxy timeout negative", ["--upstream", "http://localhost:8080", "--timeout", "-1"], "--timeout"),
    ("proxy unknown api", ["--upstream", "http://localhost:8080", "--api", "nosuch"], "nosuch"),
]


@pytest.mark.parametrize(("label", "argv", "named"), PROXY_CASES, ids=[c[0] for c in PROXY_CASES])
def test_proxy_refuses_bad_input_in_one_line(
    capsys: pytest.CaptureFixture[str], label: str, argv: list[str], named: str
) -> None:
    api = [] if "--api" in argv else ["--api", "nurosentrix"]
    _refused(capsys, proxy_run([*api, *argv]), named)
