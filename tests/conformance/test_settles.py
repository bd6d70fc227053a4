"""`lifecycle.settles`: the documented end of a lifecycle, declared apart from the sandbox's timed
transitions; compiling refuses an end the transitions never reach, and the `settles` family checks
an end the documents never state (`inferred`) in the strict profile only."""

from __future__ import annotations

import copy
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from contract import SPECS_DIR, SpecError, compile_spec
from contract.extensions import lifecycle
from tests.conformance.backends import serve
from tests.conformance.blind import cloudnexus_com, nurosentrix
from tests.conformance.conftest import run_suites
from tests.conformance.test_blind_conformance import _args, narrowed


@pytest.fixture(scope="module")
def cloudnexus() -> dict[str, Any]:
    return yaml.load((SPECS_DIR / "cloudnexus.yaml").read_text(), Loader=yaml.CSafeLoader)


def test_the_transitions_lead_to_the_declared_end() -> None:
    cycle = lifecycle(
        {
            "settles": {"to": ["done"]},
            "transitions": [{"from": "new", "to": "busy"}, {"from": "busy", "to": "done"}],
        }
    )
    assert cycle is not None and cycle.settles is not None
    assert cycle.reached("new") == {"new", "busy", "done"}
    assert cycle.reached("busy") == {"busy", "done"}
    assert cycle.settles.provenance.documented


def test_an_end_the_sandbox_never_reaches_is_refused(cloudnexus: dict[str, Any]) -> None:
    raw = copy.deepcopy(cloudnexus)
    compile_spec(raw)  # as written: provisioning -> active
    raw["x-resources"]["servers"]["lifecycle"]["settles"] = {"to": ["suspended"]}
    with pytest.raises(SpecError, match="no transition reaches"):
        compile_spec(raw)


def test_what_the_documents_leave_open_is_checked_in_strict_only(tmp_path: Path) -> None:
    """Nurosentrix' documents never say a server leaves provisioning: a backend whose servers
    never do passes the documented profile (settles skipped, saying why) and fails the strict one.
    A .com server answered active at once may be a fast asynchronous provisioning: documented
    passes it, strict wants the sandbox's `provisioning` first."""
    cases = {
        "nurosentrix": (nurosentrix, "provisioning_never_completes"),
        "cloudnexus_com": (cloudnexus_com, "created_active"),
    }
    with ExitStack() as stack:
        runs = {}
        for name, (module, defect) in cases.items():
            app = module.make_app(window=2.0, delay=1.0, defect=defect)
            url = stack.enter_context(serve(app))
            args = (*_args(name, url, app), *narrowed("settles"), "--settle-timeout", "3")
            runs |= {name: args, f"{name}:strict": (*args, "--profile", "strict")}
        out = run_suites(tmp_path, runs)
    for name in cases:
        assert out[name].code == 0, out[name]
        assert out[f"{name}:strict"].code == 1 and out[f"{name}:strict"].failing == {"settles"}, out
    assert "never says that provisioning ends" in out["nurosentrix"].stdout, out["nurosentrix"]
    assert "never reached 'active' or 'offline'" in out["nurosentrix:strict"].stdout
    assert "already at its end" in out["cloudnexus_com:strict"].stdout
