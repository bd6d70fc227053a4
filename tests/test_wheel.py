"""The package as an app team installs it, from a built wheel away from the source tree: it carries
its specs and serves all four APIs; nothing generic lands in site-packages (`contract`, `load`, ...
ship as `api_sandbox.*`, buildtools/sandbox_backend.py); the slim install brings only the sandbox's
runtime, activates no foreign pytest plugin, and its `sandbox` fixture works in an app's tests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from buildtools.sandbox_backend import MOVED, rewrite_source
from tests.apis import APIS as ALL_APIS

ROOT = Path(__file__).resolve().parent.parent
APIS = set(ALL_APIS)
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
# wheels already on this machine (the shared pip cache and local mirrors): offline and fast when present
FIND_LINKS = [d for d in ("/opt/pypi/files", "/opt/pypi-more/files", "/opt/wheels") if Path(d).is_dir()]
# what starlette and httpx bring (every Starlette/FastAPI app has it); idle unless a test is marked anyio
ALLOWED_PLUGINS = {"mock_server", "anyio"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([*PIP, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True, timeout=300)
    (built,) = wheels.glob("api_sandbox-*.whl")
    return built


def _wait_healthy(proc: subprocess.Popen[str], url: str) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(f"{url}/_mock/health", timeout=2)
        except httpx.TransportError:
            alive = proc.poll() is None and time.monotonic() < deadline
            assert alive, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)


def test_imports_of_the_moved_packages_are_rewritten_and_others_left_alone() -> None:
    src = (
        "from contract import load\nimport conformance.report as report\ndef f():\n    import proxy\n"
        "from .x import y\nfrom mock_server import cli\nimport loader\nfrom contractual import x\n"
        'cmd = ["-m", "load", "ratelimit"]\nentry = "proxy.cli:run"\n'
    )
    assert rewrite_source(src) == (
        "from api_sandbox.contract import load\nimport api_sandbox.conformance.report as report\n"
        "def f():\n    from api_sandbox import proxy\nfrom .x import y\n"
        "from mock_server import cli\nimport loader\n"
        'from contractual import x\ncmd = ["-m", "api_sandbox.load", "ratelimit"]\n'
        'entry = "api_sandbox.proxy.cli:run"\n'
    )
    with pytest.raises(ValueError, match="not rewritten"):
        rewrite_source("import contract.model\n")  # binds `contract`: a form the rules refuse


@pytest.mark.slow
def test_a_wheel_installed_elsewhere_serves_all_four_apis(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([*PIP, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=120)
    tops = {p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".data"))} - {"bin"}
    assert tops == {"api_sandbox", "mock_server", "sandbox_mcp"}, tops  # no generic name beside an app's
    shipped = {p.stem for p in (site / "api_sandbox" / "contract" / "specs").glob("*.yaml")}
    assert shipped == APIS
    # the installed copy, not the source tree: run away from it, with the wheel's files first
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "from api_sandbox import contract; import mock_server as m; "
         "print(contract.SPECS_DIR, m.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.startswith(str(site)) and str(ROOT) not in where.stdout, where.stdout
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "serve", "--memory", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        health = _wait_healthy(proc, f"http://127.0.0.1:{port}")
        assert set(health.json()["apis"]) == APIS
        r = httpx.get(f"http://127.0.0.1:{port}/nurosentrix/api/v1/servers", timeout=5)
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # the higher layers' commands, by their shipped names (proxy needs no extra)
    helped = subprocess.run(
        [sys.executable, "-m", "mock_server", "proxy", "--help"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert helped.returncode == 0 and "--upstream" in helped.stdout, helped.stderr


APP_TEST = """
import httpx


def test_my_client_lists_servers(sandbox):
    token = sandbox.token("nurosentrix", scopes=["servers:read"])
    r = httpx.get(sandbox.base_url("nurosentrix") + "/servers", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert [e.status for e in sandbox.requests("nurosentrix", path="/servers")] == [200]
"""


@pytest.mark.slow
def test_the_slim_install_in_a_fresh_venv_runs_an_apps_sandbox_test(wheel: Path, tmp_path: Path) -> None:
    """The documented line (`pip install <wheel or clone>`) into a fresh venv: only the runtime's
    packages, no foreign pytest plugin, and the `sandbox` fixture works with no configuration."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    offline = ["--no-index", *(f"--find-links={d}" for d in FIND_LINKS)] if FIND_LINKS else []
    pip = [py, "-m", "pip", "--disable-pip-version-check", "-q"]
    if subprocess.run([*pip, "install", *offline, str(wheel), "pytest"], timeout=600).returncode:
        # a dependency not among the local wheels: from the package index after all
        subprocess.run([*pip, "install", str(wheel), "pytest"], check=True, timeout=900)
    dists = subprocess.run(
        [py, "-c", "import importlib.metadata as m; print('\\n'.join(sorted({d.metadata['Name'].lower() "
         "for d in m.distributions()})))\nprint('--');"
         "print('\\n'.join(sorted(e.name for e in m.entry_points(group='pytest11'))))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    names, plugins = (set(part.split()) for part in dists.split("--"))
    for suite in ("schemathesis", "locust", "hypothesis", "connexion", "rich", "openapi-spec-validator"):
        assert suite not in names, f"{suite} installed by the slim install"
    assert plugins <= ALLOWED_PLUGINS and "mock_server" in plugins, plugins
    app = tmp_path / "app"
    app.mkdir()
    (app / "test_app.py").write_text(APP_TEST)
    run = subprocess.run(
        [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=app, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
    # the app's own module named `contract` (or load, proxy, conformance) is never shadowed
    (app / "contract.py").write_text("MINE = True\n")
    mine = subprocess.run(
        [py, "-c", "import mock_server.cli, contract; print(contract.MINE)"],
        cwd=app, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert mine.stdout.strip() == "True", mine.stderr


def test_the_test_extra_still_brings_what_the_extras_moved_out() -> None:
    """`pip install -e '.[test]'` (make test) still installs the suites the extras moved out."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def names(reqs: list[str]) -> set[str]:
        return {re.split(r"[\[<>=;\s]", r, maxsplit=1)[0].lower() for r in reqs}

    suites = names(extras["conformance"]) | names(extras["load"]) | names(extras["mcp"])
    assert suites <= names(extras["all"]) and suites | {"connexion", "pytest"} <= names(extras["test"])
    assert set(MOVED) == {"contract", "conformance", "judge", "load", "proxy"}


@pytest.mark.slow
def test_building_prints_no_setuptools_warnings(tmp_path: Path) -> None:
    """The first `make serve` (`pip install -e .` in a fresh venv) starts with the sandbox's own
    lines, not ~95 of setuptools' warnings: every data folder is a declared package, and the
    flat-layout banner is dropped (buildtools/sandbox_backend.py). The wheel builds quietly too."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    local = ["--no-index", *(f"--find-links={d}" for d in FIND_LINKS)] if FIND_LINKS else []
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    for step in (
        ["install", "--no-deps", "-e", str(ROOT)],
        ["wheel", "--no-deps", "-w", str(tmp_path), str(ROOT)],
    ):
        built = subprocess.run([*pip, *step, *local], capture_output=True, text=True, timeout=600)
        if built.returncode and local:  # setuptools not among the local wheels: from the index
            built = subprocess.run([*pip, *step], capture_output=True, text=True, timeout=600)
        assert built.returncode == 0, built.stderr
        noise = [line for line in built.stderr.splitlines() if "is ignored: it is neither" not in line]
        assert noise == [], "\n".join(noise[:40])  # (that one is this machine's pip configuration)


def test_the_plugin_costs_an_apps_test_run_no_import_of_the_sandbox() -> None:
    """pytest imports the plugin in every run of an app that installed the sandbox: that import
    loads neither the sandbox nor its dependencies (they load when a test uses the fixture)."""
    heavy = ("mock_server.app", "contract", "starlette", "uvicorn", "httpx", "jsonschema", "yaml")
    probe = (
        "import sys, mock_server.pytest_plugin; "
        f"print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr
