"""Schemathesis' phases (examples, coverage, fuzzing, stateful via the spec's links) with all of
its checks, plus ours as custom checks, driven through its Python engine.

* Our per-response checks (`conformance_envelope`, `conformance_rate_limit`) are registered with
  `@schemathesis.check`; they act only on schemas this module is running (others pass through).
* The shared budget is applied through Schemathesis hooks: `before_call` waits for a slot,
  `after_call` feeds the budget the backend's rate-limit headers and 429s; `rate-limit = "auto"`
  makes Schemathesis itself resend a 429 after its Retry-After.
* `positive_data_acceptance` also accepts 422 (the sandbox's semantic refusals, e.g. an unknown
  region), besides its defaults (2xx, 3xx, 401, 403, 404, 409, 429, 5xx).
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.engine import events, from_schema
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from contract import Contract, Operation

from .budget import Budget
from .checks.responses import Problem, envelope_problems, rate_limit_problems
from .results import SCHEMATHESIS, Results

PHASES = ("examples", "coverage", "fuzzing", "stateful")
POSITIVE_DATA_ACCEPTANCE = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
CHECK_NAMES = {"conformance_envelope": "envelope", "conformance_rate_limit": "ratelimit"}

_lock = threading.Lock()
_ACTIVE: dict[int, tuple[Contract, Budget, frozenset[str]]] = {}  # id(schema) → contract, budget, families


class ContractViolation(Failure):
    """A response departs from what the spec's x- extensions promise."""

    code = "ST901"
    kind_title = "Contract violation"
    __slots__ = ("key",)

    def __init__(self, *, operation: str, title: str, message: str, key: str) -> None:
        super().__init__(operation=operation, title=title, message=message)
        self.key = key

    @property
    def _unique_key(self) -> str:
        return self.key


def _active(case: Any, family: str | None = None) -> tuple[Contract, Budget, Operation | None] | None:
    found = _ACTIVE.get(id(case.operation.schema))
    if found is None or (family is not None and family not in found[2]):
        return None
    contract, budget, _ = found
    return contract, budget, contract.op(case.operation.method, case.operation.path)


def _raise(case: Any, problems: Iterable[Problem], title: str) -> None:
    label = case.operation.label
    failures = [
        ContractViolation(operation=label, title=title, message=p.message, key=p.key) for p in problems
    ]
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise FailureGroup(failures)


@schemathesis.check
def conformance_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """The body follows the API's x-sandbox.envelope and error-code vocabulary."""
    active = _active(case, "envelope")
    if active is None:
        return True
    contract, _, op = active
    problems = envelope_problems(contract, op, response.status_code, response.headers, response.content)
    _raise(case, [p for p in problems if p.check == "envelope"], "Envelope")
    return None


@schemathesis.check
def conformance_rate_limit(ctx: Any, response: Any, case: Any) -> bool | None:
    """Rate-limit headers present and coherent; a 429 carries Retry-After and the error envelope."""
    active = _active(case, "ratelimit")
    if active is None:
        return True
    contract, _, op = active
    problems = [
        *rate_limit_problems(contract, op, response.status_code, response.headers),
        *[
            p
            for p in envelope_problems(contract, op, response.status_code, response.headers, response.content)
            if p.check == "ratelimit"
        ],
    ]
    _raise(case, problems, "Rate limit")
    return None


def _before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    active = _active(case)
    if active is not None:
        _, budget, op = active
        budget.acquire(op.rate_buckets if op else ())


def _after_call(context: Any, case: Any, response: Any) -> None:
    active = _active(case)
    if active is not None:
        active[1].observe(response.status_code, response.headers)


def config_for(
    base_url: str,
    token: str,
    *,
    phases: Iterable[str],
    max_examples: int,
    seed: int | None,
    other_token: str | None = None,
    scheme: str = "bearerAuth",
    workdir: Path,
) -> SchemathesisConfig:
    """The Schemathesis configuration of one run (what a `schemathesis.toml` would say)."""
    enabled = set(phases)
    data: dict[str, Any] = {
        "base-url": base_url,
        "cache": {"enabled": False},
        "max-redirects": 0,
        "rate-limit": "auto",
        "request-timeout": 30,
        "generation": {"max-examples": max_examples, "database": "none"},
        "phases": {name: {"enabled": name in enabled} for name in PHASES},
        "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_DATA_ACCEPTANCE}},
        # Reproductions must reproduce: tokens stay in the samples here and the report layer
        # replaces every known token by its $CONFORMANCE_* variable (an invalid token stays visible).
        "output": {"sanitization": {"enabled": False}},
    }
    if seed is not None:
        data["seed"] = seed
    if other_token:
        # Two identities: Schemathesis' object_level_authorization replays the owner's reads as the
        # other account (Web Fuzzing Commons auth file, fixed headers).
        wfc = workdir / "identities.json"
        wfc.write_text(
            json.dumps(
                {
                    "auth": [
                        {
                            "name": "owner",
                            "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {token}"}],
                        },
                        {
                            "name": "other",
                            "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {other_token}"}],
                        },
                    ]
                }
            )
        )
        data["auth"] = {"wfc": {"path": str(wfc), "user": "owner", "peers": ["owner", "other"]}}
    else:
        data["auth"] = {"openapi": {scheme: {"bearer": token}}}
    return SchemathesisConfig.from_dict(data)


def run(
    contract: Contract,
    results: Results,
    budget: Budget,
    *,
    base_url: str,
    token: str,
    other_token: str | None,
    phases: Iterable[str],
    max_examples: int,
    seed: int | None,
    selected: Iterable[str] = ("envelope", "ratelimit"),
    progress: Any = None,
) -> None:
    """Run the engine over the spec; fold its failures into `results` (grouped by check/operation)."""
    phases = [p for p in phases if p in PHASES]
    if not phases:
        results.skip(SCHEMATHESIS, "no Schemathesis phase selected (--phases)")
        return
    raw = json.loads(json.dumps(contract.raw))  # Schemathesis may annotate the dict it is given
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        config = config_for(
            base_url,
            token,
            phases=phases,
            max_examples=max_examples,
            seed=seed,
            other_token=other_token,
            scheme=_bearer_scheme(raw) or "bearerAuth",
            workdir=Path(tmp),
        )
        schema = schemathesis.openapi.from_dict(raw, config=config)
        schema.hooks.register_hook_with_name(_after_call, "after_call")
        with _lock:
            _ACTIVE[id(schema)] = (contract, budget, frozenset(selected))
        GLOBAL_HOOK_DISPATCHER.register_hook_with_name(_before_call, "before_call")
        started = time.monotonic()
        try:
            for event in from_schema(schema).execute():
                if isinstance(event, events.PhaseStarted):
                    budget.section = f"schemathesis {event.phase.name.value}"
                _fold(event, results, progress)
        finally:
            GLOBAL_HOOK_DISPATCHER.unregister(_before_call)
            with _lock:
                _ACTIVE.pop(id(schema), None)
        results.ran["schemathesis"] = time.monotonic() - started


def _bearer_scheme(raw: dict[str, Any]) -> str | None:
    for name, scheme in ((raw.get("components") or {}).get("securitySchemes") or {}).items():
        if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
            return str(name)
    return None


def _fold(event: events.EngineEvent, results: Results, progress: Any) -> None:
    if isinstance(event, events.PhaseStarted) and progress is not None:
        progress(f"schemathesis: {event.phase.name.value} phase")
    elif isinstance(event, events.ScenarioFinished):
        recorder = event.recorder
        for case_id, checks in recorder.checks.items():
            node = recorder.cases.get(case_id)
            label = node.value.operation.label if node is not None else recorder.label
            for check in checks:
                name = CHECK_NAMES.get(check.name, check.name)
                info = check.failure_info
                if info is None:
                    results.ok(name, label)
                    continue
                failure = info.failure
                interaction = recorder.interactions.get(case_id)
                response = None
                if interaction is not None and interaction.response is not None:
                    text = interaction.response.content[:400].decode("utf-8", "replace")
                    response = f"HTTP {interaction.response.status_code} {text}".rstrip()
                curl = "\n".join(step.curl for step in info.steps) if info.steps else info.code_sample
                if isinstance(failure, ContractViolation):  # ours: keyed as the domain probes key it
                    message, key = failure.message, failure.key
                else:
                    message = f"{failure.title}: {failure.message}".strip().rstrip(":")
                    key = f"{type(failure).__name__}:{getattr(failure, '_unique_key', '')}"
                results.fail(
                    name,
                    failure.operation or label,
                    message,
                    curl=curl,
                    response=response,
                    key=key,
                    source=SCHEMATHESIS,
                )
    elif isinstance(event, events.NonFatalError):
        results.fail(
            "schemathesis_error",
            event.label,
            f"{event.info.title}: {event.info.message}",
            curl=event.info.code_sample if hasattr(event.info, "code_sample") else None,
            key=f"{type(event.value).__name__}",
            source=SCHEMATHESIS,
        )
    elif isinstance(event, events.FatalError):
        results.fail(
            "schemathesis_error", "*", f"Schemathesis crashed: {event.exception!r}", source=SCHEMATHESIS
        )
    elif isinstance(event, events.EngineFinished):
        for failure in event.failures:
            results.fail(
                CHECK_NAMES.get(failure.title, "schemathesis_run_check"),
                failure.operation or "*",
                f"{failure.title}: {failure.message}",
                source=SCHEMATHESIS,
            )
