"""Schemathesis' phases (examples, coverage, fuzzing, stateful via the spec's links) with all of
its checks, plus ours on every response, driven through its Python engine.

* In the documented profile Schemathesis runs the spec's documented view (`contract.documented`):
  what the sandbox inferred (a closed enum, a length limit, a 201 rather than any 2xx, a header)
  is not held against the backend; `positive_data_acceptance` also accepts 400.
* Our per-response checks (envelope, rate-limit headers) run in the `after_call` hook and are
  recorded straight into the results, not as Schemathesis checks: Schemathesis stops exploring an
  operation at its first failing check, so a complaint there would hide real 500s.
* The shared budget is applied through Schemathesis hooks: `before_call` waits for a slot,
  `after_call` feeds the budget the backend's rate-limit headers and 429s; `rate-limit = "auto"`
  makes Schemathesis itself resend a 429 after its Retry-After.
* `positive_data_acceptance` also accepts 422 (the sandbox's semantic refusals, e.g. an unknown
  region), besides its defaults (2xx, 3xx, 401, 403, 404, 409, 429, 5xx).
* `negative_data_rejection` takes a refusal of invalid data with the status the documents' table
  gives it (`x-sandbox.status-table`: CloudNexus .com "400 ... Missing or invalid parameters"),
  no other validation status (422); without a table, any of Schemathesis' defaults.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from contract import Contract, Operation
from judge.response import judged_problems

from .budget import Budget
from .checks import per_response
from .cleanup import Tracker
from .results import SCHEMATHESIS, Results, is_success

PHASES = ("examples", "coverage", "fuzzing", "stateful")
POSITIVE_DATA_ACCEPTANCE = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
# Schemathesis' default refusals of invalid data, but for the two statuses of a validation
# refusal (400, 422), which a documented status table narrows to its own
NEGATIVE_DATA_REJECTION = ["401", "403", "404", "405", "406", "409", "415", "428", "429", "5xx"]

_lock = threading.Lock()


@dataclass(frozen=True)
class Active:
    """What judges a schema's responses while it runs."""

    contract: Contract  # drives the run (operations, buckets)
    judge: Contract  # judges responses: the documented view, or the contract itself (strict)
    budget: Budget
    families: frozenset[str]
    results: Results
    tracker: Tracker | None = None


_ACTIVE: dict[int, Active] = {}  # id(schema) → its judges


def _active(case: Any) -> tuple[Active, Operation | None] | None:
    found = _ACTIVE.get(id(case.operation.schema))
    if found is None:
        return None
    return found, found.contract.op(case.operation.method, case.operation.path)


def _curl(response: Any) -> str | None:
    """The request as sent (tokens included: the report layer replaces them by variables)."""
    request = getattr(response, "request", None)
    if request is None:
        return None
    parts = ["curl", "-sS", "-i", "-X", str(request.method), shlex.quote(str(request.url))]
    for name, value in request.headers.items():
        if name.lower() not in ("user-agent", "accept-encoding", "connection", "content-length", "accept"):
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    body = request.body
    if body:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        parts += ["--data-binary", shlex.quote(text)]
    return " ".join(parts)


def _collect(active: Active, op: Operation | None, case: Any, response: Any) -> None:
    """Our per-response checks, recorded outside Schemathesis' checks: a complaint never stops
    Schemathesis exploring the operation (it stops at an operation's first failing check)."""
    label = case.operation.label
    found = judged_problems(
        active.contract, active.judge, op, response.status_code, response.headers, response.content
    )
    families = set(per_response()) & active.families
    complained = {p.check for p, _ in found}
    for problem, inferred in found:
        if problem.check in families:
            text = response.content[:2000].decode("utf-8", "replace")
            active.results.fail(
                problem.check,
                label,
                problem.message,
                curl=_curl(response),
                response=f"HTTP {response.status_code} {text}".rstrip(),
                key=problem.key,
                source=SCHEMATHESIS,
                inferred=inferred,
            )
    for check in families - complained:
        active.results.ok(check, label)


def _before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    found = _active(case)
    if found is not None:
        active, op = found
        if active.tracker is not None and case.path_parameters:
            active.tracker.spare(case.operation.method, case.path_parameters)
        active.budget.current = case.operation.label
        active.budget.acquire(op.rate_buckets if op else ())


def _after_call(context: Any, case: Any, response: Any) -> None:
    found = _active(case)
    if found is not None:
        active, op = found
        active.budget.observe(response.status_code, response.headers)
        if is_success(response.status_code, op.responses if op is not None else ()):
            active.results.success(case.operation.label)
        if active.tracker is not None:
            request = getattr(response, "request", None)
            auth = request.headers.get("Authorization") if request is not None else None
            active.tracker.seen(
                op,
                case.operation.method,
                response.status_code,
                response.content,
                active.tracker.identity(auth),
                case.path_parameters or {},
                source="schemathesis",
            )
        _collect(active, op, case, response)


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
    lenient: bool = False,
    invalid_status: int | None = None,
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
        "checks": {
            "positive_data_acceptance": {
                # documented profile: a request body the documents do not show as required is
                # sent without one too; a backend requiring it answers 400, or 415 (no Content-Type)
                "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE, *(["400", "415"] if lenient else [])]
            },
            "negative_data_rejection": {
                "expected-statuses": [
                    *NEGATIVE_DATA_REJECTION,
                    *([str(invalid_status)] if invalid_status else ["400", "422"]),
                ]
            },
        },
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
    selected: Iterable[str] | None = None,  # default: the per-response families
    progress: Any = None,
    judge: Contract | None = None,
    tracker: Tracker | None = None,
) -> None:
    """Run the engine over the spec (the judge's: the documented view in the documented
    profile); fold its failures into `results` (grouped by check and operation)."""
    phases = [p for p in phases if p in PHASES]
    if not phases:
        results.skip(SCHEMATHESIS, "no Schemathesis phase selected (--phases)")
        return
    judge = judge or contract
    raw = json.loads(json.dumps(judge.raw))  # Schemathesis may annotate the dict it is given
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        config = config_for(
            base_url,
            token,
            phases=phases,
            max_examples=max_examples,
            seed=seed,
            other_token=other_token,
            scheme=next(iter(judge.bearer_schemes), "bearerAuth"),
            workdir=Path(tmp),
            # the documents name no closed set of refusals: 400 for what a backend limits unasked
            lenient=judge is not contract,
            invalid_status=judge.status_for("invalid-parameters"),
        )
        schema = schemathesis.openapi.from_dict(raw, config=config)
        schema.hooks.register_hook_with_name(_after_call, "after_call")
        with _lock:
            _ACTIVE[id(schema)] = Active(
                contract,
                judge,
                budget,
                frozenset(per_response() if selected is None else selected),
                results,
                tracker,
            )
        GLOBAL_HOOK_DISPATCHER.register_hook_with_name(_before_call, "before_call")
        started = time.monotonic()
        stream = from_schema(schema).execute()
        done = threading.Event()

        def watch() -> None:  # a signal or --max-time stops the engine between two cases
            while not done.is_set():
                if budget.stop.wait(0.2):
                    stream.stop()
                    return

        watcher = threading.Thread(target=watch, name="conformance-stop", daemon=True)
        watcher.start()
        try:
            for event in stream:
                if isinstance(event, events.PhaseStarted):
                    budget.section = f"schemathesis {event.phase.name.value}"
                _fold(event, results, progress, contract if judge is not contract else None, contract)
        finally:
            done.set()
            GLOBAL_HOOK_DISPATCHER.unregister(_before_call)
            with _lock:
                _ACTIVE.pop(id(schema), None)
        results.ran["schemathesis"] = time.monotonic() - started


_MISSING_METHODS = re.compile(r"Missing documented methods: ([A-Z, ]+)")


def _inferred_methods(contract: Contract, label: str, message: str) -> str | None:
    """An `Allow` header lacking only methods the documents do not show is the vendor's choice."""
    m = _MISSING_METHODS.search(message)
    path = label.split(" ", 1)[-1]
    if m is None:
        return None
    missing = [x.strip() for x in m.group(1).split(",") if x.strip()]
    ops = [contract.op(x, path) for x in missing]
    if missing and all(op is not None and op.provenance.inferred for op in ops):
        return f"the Allow header lacks only methods the documents do not show ({', '.join(missing)})"
    return None


_ADVERTISED = re.compile(r"Undocumented methods advertised: ([A-Z, ]+)")


def _allowed_by_overlap(contract: Contract, label: str, message: str) -> bool:
    """An `Allow` header whose extra methods are those of another documented path the same URL
    matches (`/nodes/join-token` is also `/nodes/{id}`: GET and DELETE) lists them rightly."""
    m = _ADVERTISED.search(message)
    path = label.split(" ", 1)[-1]
    if m is None or "{" in path:
        return False
    extra = {x.strip() for x in m.group(1).split(",") if x.strip()}
    overlapping = {
        op.method.upper()
        for template, ops in contract.paths
        if template != path and "{" in template
        for op in ops
        if op.regex.fullmatch(path)
    }
    return bool(extra) and extra <= overlapping


def _fold(
    event: events.EngineEvent,
    results: Results,
    progress: Any,
    full: Contract | None = None,
    spec: Contract | None = None,
) -> None:
    """Fold Schemathesis' events into `results`; `full`: the whole contract when the run judges
    by the documented view (what a failure owes to an inferred part is reported apart); `spec`:
    the contract the run is driven by (what a path's URL also matches)."""
    if isinstance(event, events.PhaseStarted) and progress is not None:
        progress(f"schemathesis: {event.phase.name.value} phase")
    elif isinstance(event, events.ScenarioFinished):
        recorder = event.recorder
        for case_id, checks in recorder.checks.items():
            node = recorder.cases.get(case_id)
            label = node.value.operation.label if node is not None else recorder.label
            for check in checks:
                name = check.name
                info = check.failure_info
                if info is None:
                    results.ok(name, label)
                    continue
                failure = info.failure
                interaction = recorder.interactions.get(case_id)
                response = None
                if interaction is not None and interaction.response is not None:
                    text = interaction.response.content[:2000].decode("utf-8", "replace")
                    response = f"HTTP {interaction.response.status_code} {text}".rstrip()
                curl = "\n".join(step.curl for step in info.steps) if info.steps else info.code_sample
                message = f"{failure.title}: {failure.message}".strip().rstrip(":")
                key = f"{type(failure).__name__}:{getattr(failure, '_unique_key', '')}"
                if spec is not None and _allowed_by_overlap(spec, label, message):
                    results.ok(name, label)
                    continue
                inferred = _inferred_methods(full, label, message) if full is not None else None
                results.fail(
                    name,
                    failure.operation or label,
                    message,
                    curl=curl,
                    response=response,
                    key=key,
                    source=SCHEMATHESIS,
                    inferred=inferred,
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
                "schemathesis_run_check",
                failure.operation or "*",
                f"{failure.title}: {failure.message}",
                source=SCHEMATHESIS,
            )
