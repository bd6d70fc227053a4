"""Every client rule of the sandbox's grade, shown by two small clients (one module per rule):
the bad one breaks exactly that rule, the good one exercises it and breaks none.

    .venv/bin/python -m pytest docs/examples/clients
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from app import Api

from mock_server.testing import SandboxServer

API = "nurosentrix"
CLIENTS = sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem not in ("app", "test_clients"))


def _pick(value: Any, kind: str) -> Any:
    return value[kind] if isinstance(value, dict) else value


def run(sandbox: SandboxServer, module: ModuleType, kind: str) -> tuple[dict[str, Any], str]:
    """The client `kind` ("bad" or "good") of `module` against a fresh sandbox, and its grade."""
    if hasattr(module, "world"):
        module.world(sandbox)
    scopes = _pick(getattr(module, "SCOPES", None), kind)
    mode = _pick(getattr(module, "MODE", "test"), kind)
    api = getattr(module, "API", API)
    token = sandbox.token(api, scopes=scopes, mode=mode)
    getattr(module, kind)(Api(sandbox.base_url(api), token, sandbox.clock.advance))
    return sandbox.grade(api, token), token


@pytest.mark.parametrize("name", CLIENTS)
def test_the_bad_client_breaks_exactly_its_rule(sandbox: SandboxServer, name: str) -> None:
    module = importlib.import_module(name)
    grade, _ = run(sandbox, module, "bad")
    assert grade["failed"] == [module.RULE], grade


@pytest.mark.parametrize("name", CLIENTS)
def test_the_good_client_keeps_every_rule(sandbox: SandboxServer, name: str) -> None:
    module = importlib.import_module(name)
    grade, token = run(sandbox, module, "good")
    verdicts = {r["id"]: r["verdict"] for r in grade["rules"]}
    assert verdicts[module.RULE] == "pass", grade
    sandbox.assert_good_client(grade["api"], token)


def test_every_rule_has_its_clients() -> None:
    from mock_server.grading import RULES

    assert sorted(importlib.import_module(n).RULE for n in CLIENTS) == sorted(r.id for r in RULES)
