"""One run: load the contract, get tokens, check the backend answers, run the domain families
and Schemathesis under one request budget, clean up, probe the rate limit, report."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from urllib.parse import urlsplit

import httpx

from contract import Contract, SpecError, load
from judge.profile import Profile
from judge.response import judged_problems

from . import baseline, report
from .budget import Budget, BudgetError, Interrupted
from .checks import LAST, ONCE, ORDER, Context, Family, load_all
from .cleanup import Tracker
from .factory import Factory
from .http import TOKEN_VARS, Client, Exchange
from .plan import plan as plan_requests
from .progress import Progress
from .results import Results, is_success

EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
ADMIN_VAR = "SANDBOX_ADMIN_TOKEN"
SETTLE_TIMEOUT = 30.0  # seconds a created record may take to reach its lifecycle's end (--settle-timeout)


class UsageError(Exception):
    """Bad options, an unreachable backend or a rejected token: exit 2."""


@dataclass
class Options:
    api: str
    base_url: str | None = None
    token: str | None = None
    limited_token: str | None = None
    other_token: str | None = None
    revoked_token: str | None = None  # a token the backend revoked (the auth family's probe)
    live_token: str | None = None  # a live-mode token of --token's account (the modes family)
    sandbox: str | None = None
    spec: str | None = None
    junit_xml: str | None = None
    report: str | None = None
    max_examples: int = 10
    rate_limit: str = "auto"
    seed: int | None = None
    phases: list[str] = field(default_factory=lambda: ["examples", "coverage", "fuzzing", "stateful"])
    checks: list[str] = field(default_factory=lambda: list(ORDER))
    timeout: float = 30.0
    quiet: bool = False
    profile: str = "documented"  # or "strict"
    baseline: str | None = None
    write_baseline: str | None = None
    admin_token: str | None = None  # the sandbox control API's token (--sandbox)
    keep_resources: bool = False
    max_time: float | None = None  # seconds: stop the checks, clean up, report (exit 3)
    progress: str = "auto"  # auto, rich, plain, off
    progress_interval: float = 15.0
    login_email: str | None = None  # a user of the backend, for its login operation
    login_password: str | None = None
    webhook_secret: str | None = None  # signs webhook deliveries (x-signature) when records carry none
    settle_timeout: float | None = None  # seconds a record may take to reach its lifecycle's end
    success_paths: bool = True  # a last request for each operation that never answered 2xx
    fill_to_max: bool = False  # create max + 1 records where only that shows a list's cap


def settle_default(contract: Contract, sandbox: str | None) -> float:
    """30 s; against a sandbox, also every declared lifecycle's time end to end and a margin
    (the sandbox serves the spec's timings: a Nexos build takes 65 s), so it passes itself."""
    if not sandbox:
        return SETTLE_TIMEOUT
    longest = max(
        (sum(t.after for t in r.lifecycle.transitions) for r in contract.resources.values() if r.lifecycle),
        default=0.0,
    )
    return max(SETTLE_TIMEOUT, longest + 10.0)


@dataclass
class Tokens:
    token: str
    limited: str | None = None
    other: str | None = None
    limited_scopes: list[str] | None = None
    revoked: str | None = None
    login: tuple[str, str] | None = None  # a user the sandbox made for the login operation
    live: str | None = None  # the same account as `token`, in live mode

    def as_dict(self) -> dict[str, str | None]:
        return {"token": self.token, "limited": self.limited, "other": self.other, "live": self.live}


def _control_refused(root: str, r: httpx.Response) -> UsageError | None:
    if r.status_code == 401:
        return UsageError(
            f"the sandbox control API at {root}/_mock refused the request (401): it needs the admin token "
            f"the sandbox was started with: --admin-token or ${ADMIN_VAR}"
        )
    if r.status_code == 404:
        return UsageError(
            f"{root}/_mock answered 404: no sandbox control API there; --sandbox takes the sandbox's root "
            "URL (e.g. http://127.0.0.1:8080), not an API's base URL"
        )
    return None


def mint_tokens(
    sandbox: str, contract: Contract, timeout: float, admin_token: str | None = None
) -> tuple[Tokens, str]:
    """Three tokens from a running sandbox's control API, in fresh accounts; and the API's base URL."""
    root = sandbox.rstrip("/")
    run = secrets.token_hex(4)
    account = f"conformance-{run}"
    headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
    try:
        with httpx.Client(timeout=timeout, headers=headers) as http:
            health = http.get(f"{root}/_mock/health")
            refused = _control_refused(root, health)
            if refused is not None:
                raise refused
            health.raise_for_status()
            if "apis" not in health.json():  # a guarded sandbox's public answer: its refusal says why
                refused = _control_refused(root, http.get(f"{root}/_mock/tokens", params={"limit": 1}))
                if refused is not None:
                    raise refused
            base_path = (health.json().get("apis") or {}).get(contract.name)
            if base_path is None:
                raise UsageError(f"the sandbox at {root} does not serve {contract.name!r}")

            def mint(**body: object) -> str:
                r = http.post(
                    f"{root}/_mock/tokens", json={"api": contract.name, "name": "conformance", **body}
                )
                refused = _control_refused(root, r)
                if refused is not None:
                    raise refused
                if r.status_code != 201:
                    raise UsageError(f"the sandbox refused to mint a token: {r.status_code} {r.text[:200]}")
                return str(r.json()["token"])

            limited_scopes = (
                [s for s in contract.scopes if not s.endswith(":write")] if contract.scopes else None
            )
            tokens = Tokens(
                token=mint(account=account),
                limited=mint(account=account, scopes=limited_scopes) if limited_scopes is not None else None,
                other=mint(account=f"{account}-other"),
                limited_scopes=limited_scopes,
            )
            from .success import is_login

            if any(is_login(op) for op in contract.operations):
                email, password = f"conformance+{run}@example.com", secrets.token_urlsafe(18)
                user = {"api": contract.name, "account": account, "email": email, "password": password}
                if http.post(f"{root}/_mock/users", json=user).status_code == 201:
                    tokens.login = (email, password)
            revoked = mint(account=account)
            if http.delete(f"{root}/_mock/tokens/{revoked}").status_code == 204:
                tokens.revoked = revoked
            if "live" in contract.token_prefixes:
                tokens.live = mint(account=account, mode="live")
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach the sandbox control API at {root}/_mock: {exc}") from None
    return tokens, f"{root}{base_path}"


@dataclass
class Step:
    """One step of the run's plan; `shows`: its names in the progress display."""

    run: Callable[[], None]
    shows: tuple[str, ...]
    stage: str = "checks"  # "checks" (a stop skips the rest), "cleanup" (always), "last" (if complete)


@dataclass
class _Run:
    """What the steps of one run share."""

    contract: Contract
    tokens: Tokens
    base_url: str
    budget: Budget
    judge: Contract
    results: Results
    tracker: Tracker
    client: Client
    factory: Factory
    ctx: Context
    families: list[Family] = field(default_factory=list)  # the selected ones, in the plan's order
    secrets_shown: dict[str, str] = field(default_factory=dict)


class Runner:
    def __init__(self, options: Options, log: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.log = log or (
            lambda msg: None if options.quiet else print(f"[conformance] {msg}", file=sys.stderr)
        )

    def prepare(self) -> tuple[Contract, Tokens, str]:
        o = self.options
        try:
            contract = load(o.api, o.spec)
        except SpecError as exc:
            raise UsageError(str(exc)) from None
        if o.sandbox:
            tokens, derived = mint_tokens(o.sandbox, contract, o.timeout, o.admin_token)
            tokens.token = o.token or tokens.token
            tokens.limited = o.limited_token or tokens.limited
            tokens.other = o.other_token or tokens.other
            tokens.revoked = o.revoked_token or tokens.revoked
            # a minted live token shares the minted account only: not a --token given by hand's
            tokens.live = o.live_token or (None if o.token else tokens.live)
            if o.limited_token:
                tokens.limited_scopes = None
            base_url = o.base_url or derived
        else:
            if not o.token or not o.base_url:
                raise UsageError("--base-url and --token are required (or --sandbox URL to mint tokens)")
            tokens = Tokens(o.token, o.limited_token, o.other_token, revoked=o.revoked_token)
            tokens.live = o.live_token
            base_url = o.base_url
        return contract, tokens, base_url.rstrip("/")

    def preflight(self, client: Client, contract: Contract) -> None:
        """The backend answers, accepts the token and is where --base-url says; else a usage
        error (exit 2)."""
        from .checks.ratelimit import probe_operation

        ctx_op = probe_operation(
            Context(contract, client, Results(contract.name, client.base_url), Factory(contract, client), {})
        )
        op = ctx_op or next((o for o in contract.operations if o.method == "get"), None)
        if op is None:
            return
        try:
            ex = client.call(op, path={p.name: "conformance" for p in op.path_params})
        except httpx.HTTPError as exc:
            raise UsageError(f"the backend at {client.base_url} is unreachable: {exc}") from None
        if ex.status == 401 and not op.public:
            raise UsageError(f"the backend rejected --token on {op.label} (401)")
        gets = [o for o in contract.operations if o.method == "get" and not o.path_params and not o.public]
        answers = [ex] if op in gets else []
        for other in gets[:4]:
            if other is not op:
                answers.append(client.call(other))
        if answers and all(a.status == 404 for a in answers):
            raise UsageError(self._wrong_base(client.base_url, contract, [a.label for a in answers]))
        if ex.status == 404 and not op.path_params and not ex.content.strip().startswith(b"{"):
            raise UsageError(f"{ex.url} answered 404: is --base-url the API's base URL?")

    @staticmethod
    def _wrong_base(base_url: str, contract: Contract, tried: list[str]) -> str:
        from .usage import rebased

        documented = urlsplit(contract.server_url).path.rstrip("/")
        given = urlsplit(base_url)
        hint = ""
        origin = f"{given.scheme}://{given.netloc}"
        if documented and not given.path.rstrip("/").endswith(documented):
            hint = (
                f"; the spec's base path is {documented!r} (servers[0].url {contract.server_url}): "
                f"try --base-url {origin}{rebased(given.path, documented)}"
            )
        try:  # a sandbox at that origin serves the API under its own path
            health = httpx.get(f"{origin}/_mock/health", timeout=5)
            served = (
                (health.json().get("apis") or {}).get(contract.name) if health.status_code == 200 else None
            )
        except (httpx.HTTPError, ValueError, AttributeError):
            served = None
        if served:  # the surest hint first
            use = f"use --base-url {origin}{served} or --sandbox {origin}"
            hint = f"; a sandbox answers at {origin}: {use}{hint}"
        return (
            f"every documented GET tried at --base-url {base_url} answered 404 ({', '.join(tried)}): "
            f"is it the API's base URL?{hint}"
        )

    def run(self) -> tuple[int, Results]:
        o = self.options
        r = self._setup()
        plan = self._plan(r)
        shown = [name for step in plan for name in step.shows]
        mode = "off" if o.quiet else o.progress
        progress = Progress(
            r.budget, r.results, shown, mode, interval=o.progress_interval, max_time=o.max_time
        )
        self.log = progress.log
        progress.start()
        restore = self._on_signals(r.budget)
        timer = None
        if o.max_time is not None:
            timer = threading.Timer(o.max_time, r.budget.interrupt, (f"--max-time {o.max_time:g}s reached",))
            timer.daemon = True
            timer.start()
        self.log(f"{r.contract.name} at {r.base_url}; budget: {r.budget.describe()}")
        planned = plan_requests(r.contract, o.phases, len(r.families), o.max_examples, o.rate_limit)
        r.results.meta["planned"] = planned.line(o.max_time).removeprefix("plan: ")
        self.log(planned.line(o.max_time))
        try:
            try:
                r.budget.section = "preflight"
                self.preflight(r.client, r.contract)
                for step in plan:
                    if step.stage == "checks":
                        step.run()
            except Interrupted:
                r.results.incomplete = r.budget.stop_reason or "interrupted"
                self.log(f"STOPPING: {r.results.incomplete}; cleaning up and writing the reports")
            if timer is not None:
                timer.cancel()
            r.budget.resume()
            for step in plan:
                if step.stage == "cleanup" or (step.stage == "last" and r.results.incomplete is None):
                    step.run()
        finally:
            if timer is not None:
                timer.cancel()
            restore()
            progress.stop()
            r.client.close()
        return self._finish(r)

    def _setup(self) -> _Run:
        """The contract, tokens, budget, results, the observer of every response and the client."""
        o = self.options
        contract, tokens, base_url = self.prepare()
        try:
            budget = Budget(o.rate_limit, contract.buckets)
        except BudgetError as exc:
            raise UsageError(str(exc)) from None
        judge = Profile.named(o.profile).view(contract)
        results = self._results(contract, base_url)
        selected = [c for c in ORDER if c in o.checks]
        families = load_all()
        tracker = Tracker(contract, tokens.as_dict())
        per_response = [n for n in selected if families[n].per_response]
        observe = self._observer(contract, judge, results, tracker, budget, base_url, per_response)
        client = Client(base_url, contract, budget, tokens.as_dict(), [observe], timeout=o.timeout)
        settle = o.settle_timeout if o.settle_timeout is not None else settle_default(contract, o.sandbox)
        factory = Factory(contract, client, settle_timeout=settle)
        ctx = Context(
            contract,
            client,
            results,
            factory,
            tokens.as_dict(),
            limited_scopes=tokens.limited_scopes,
            revoked_token=tokens.revoked,
            login_email=o.login_email or (tokens.login[0] if tokens.login else None),
            judge=judge,
            webhook_secret=o.webhook_secret,
            settle_timeout=settle,
            fill_to_max=o.fill_to_max,
        )
        run = _Run(contract, tokens, base_url, budget, judge, results, tracker, client, factory, ctx)
        run.families = [families[n] for n in selected]
        run.secrets_shown = self._secrets(tokens)
        return run

    def _results(self, contract: Contract, base_url: str) -> Results:
        o = self.options
        results = Results(contract.name, base_url, profile=o.profile)
        results.operations = [op.label for op in contract.operations]
        results.meta = self._meta(contract, base_url)
        results.inferred_ops = {
            op.label: op.provenance.reason or "x-inferred"
            for op in contract.operations
            if op.provenance.inferred
        }
        if contract.scopes_provenance.inferred:
            why = contract.scopes_provenance.reason
            results.inferred_checks["scopes"] = f"the scopes are not in the documents ({why})"
        if o.baseline:
            try:
                results.baseline = baseline.read(o.baseline)
            except baseline.BaselineError as exc:
                raise UsageError(str(exc)) from None
        return results

    def _secrets(self, tokens: Tokens) -> dict[str, str]:
        """Each secret of the run and the variable the reports show instead."""
        o = self.options
        shown = {v: f"${TOKEN_VARS[k]}" for k, v in tokens.as_dict().items() if v}
        if tokens.revoked:
            shown[tokens.revoked] = "$CONFORMANCE_REVOKED_TOKEN"
        if o.admin_token:
            shown[o.admin_token] = f"${ADMIN_VAR}"
        if o.webhook_secret:
            shown[o.webhook_secret] = "$CONFORMANCE_WEBHOOK_SECRET"
        if o.login_password:
            shown[o.login_password] = "$CONFORMANCE_LOGIN_PASSWORD"
        if tokens.login:
            shown[tokens.login[1]] = "$CONFORMANCE_LOGIN_PASSWORD"
        return shown

    @staticmethod
    def _observer(
        contract: Contract,
        judge: Contract,
        results: Results,
        tracker: Tracker,
        budget: Budget,
        base_url: str,
        per_response: list[str],
    ) -> Callable[[Exchange], None]:
        """What every response the suite receives goes through: success bookkeeping, the
        cleanup's tracker, never a 5xx, and the per-response families (judge.response)."""

        def observe(ex: Exchange) -> None:
            if ex.op is not None and is_success(ex.status, ex.op.responses):
                results.success(ex.label)
            tracker.observe_exchange(ex, base_url, budget.section)
            if ex.status >= 500:
                results.fail(
                    "not_a_server_error",
                    ex.label,
                    f"HTTP {ex.status}: the backend failed on a request the suite sent",
                    curl=ex.curl(),
                    response=ex.summary(),
                    key=f"status:{ex.status}",
                )
            found = judged_problems(contract, judge, ex.op, ex.status, ex.response_headers, ex.content)
            for check in per_response:
                mine = [(p, why) for p, why in found if p.check == check]
                for p, why in mine:
                    results.fail(
                        check,
                        ex.label,
                        p.message,
                        curl=ex.curl(),
                        response=ex.summary(),
                        key=p.key,
                        inferred=why,
                    )
                if not mine and ex.op is not None:
                    results.ok(check, ex.label)

        return observe

    def _plan(self, r: _Run) -> list[Step]:
        """The run's steps in order: the `once` families, Schemathesis' phases, the success
        paths, the cleanup, the `last` families. A stop skips to the cleanup."""
        o = self.options
        plan = [Step(partial(self._once, r, f), (f.name,)) for f in r.families if f.kind == ONCE]
        plan.append(Step(partial(self._schemathesis, r), tuple(f"schemathesis {p}" for p in o.phases)))
        if o.success_paths:
            plan.append(Step(partial(self._success_paths, r), ("success paths",)))
        plan.append(Step(partial(self._cleanup, r), ("cleanup",), "cleanup"))
        plan += [
            Step(partial(self._family, r.ctx, f), (f.name,), "last") for f in r.families if f.kind == LAST
        ]
        return plan

    def _once(self, r: _Run, fam: Family) -> None:
        self._family(r.ctx, fam)
        if r.budget.stop.is_set():
            raise Interrupted(r.budget.stop_reason or "stopped")

    def _schemathesis(self, r: _Run) -> None:
        o = self.options
        self._hints(r.results, by_hand={"limited": bool(o.limited_token), "other": bool(o.other_token)})
        if o.phases:
            self.log(f"schemathesis: phases {', '.join(o.phases)}, max {o.max_examples} examples")
            from . import schemathesis_phase

            schemathesis_phase.run(
                r.contract,
                r.results,
                r.budget,
                base_url=r.base_url,
                token=r.tokens.token,
                other_token=r.tokens.other,
                phases=o.phases,
                max_examples=o.max_examples,
                seed=o.seed,
                selected=[f.name for f in r.families],
                progress=self.log,
                judge=r.judge,
                tracker=r.tracker,
            )
        else:
            r.results.skip("schemathesis", "no Schemathesis phase selected (--phases none)")
        if r.budget.stop.is_set():
            raise Interrupted(r.budget.stop_reason or "stopped")

    def _success_paths(self, r: _Run) -> None:
        o = self.options
        r.budget.section = "success paths"
        from .success import exercise

        login = r.tokens.login
        if o.login_email and o.login_password:
            login = (o.login_email, o.login_password)
        reached = exercise(r.contract, r.factory, r.results, o.webhook_secret, login)
        if reached:
            self.log(f"success paths: a 2xx at last for {', '.join(reached)}")

    def _cleanup(self, r: _Run) -> None:
        o = self.options
        r.budget.section = "cleanup"
        if o.keep_resources:
            self.log("cleanup: skipped (--keep-resources)")
        else:
            self.log(f"cleaning up {len(r.tracker.pending())} record(s), children first")
            r.tracker.cleanup(r.client, abort=self._aborted)
        r.results.cleanup = r.tracker.summary(kept=o.keep_resources)
        if r.tracker.spared:
            r.results.notes.append(
                f"{r.tracker.spared} Schemathesis write(s) aimed at a record the run did not create (an id "
                "it saw in a response) went to a stand-in id instead: the suite changes only its records"
            )
        self.log(f"cleanup: {r.results.cleanup}")

    def _finish(self, r: _Run) -> tuple[int, Results]:
        """The run's figures in its notes, the reports written, the exit code."""
        o, results, budget = self.options, r.results, r.budget
        results.requests = budget.requests + r.client.unpaced
        results.rate_limited = budget.rate_limited
        results.notes.append(f"budget: {budget.describe()}; waited {budget.waited:.1f}s for it")
        counts = ", ".join(f"{k}={v}" for k, v in sorted(budget.by_bucket.items()) if k != "*")
        floor = budget.estimate(r.contract.buckets)
        results.notes.append(
            f"requests by rate-limit bucket: {counts}; at the spec's documented limits this run needs "
            f"at least {floor / 60:.1f} min"
        )
        results.notes.append("time per part: " + ", ".join(f"{k} {v:.1f}s" for k, v in results.ran.items()))
        results.notes.append(
            "requests per part: "
            + ", ".join(
                f"{section} {n.get('*', 0)}"
                + "".join(f" ({b} {c})" for b, c in sorted(n.items()) if b != "*")
                for section, n in budget.by_section.items()
            )
        )
        results.finished = time.monotonic()
        results.meta["duration"] = f"{results.duration:.1f}s"
        results.meta["requests"] = str(results.requests)
        for note in r.ctx.notes:
            results.notes.append(note)
        report.write_all(results, o.junit_xml, o.report, r.secrets_shown)
        if o.write_baseline:
            baseline.write(o.write_baseline, results, r.secrets_shown)
        print(report.summary(results, r.secrets_shown))
        if results.incomplete is not None:
            return EXIT_INCOMPLETE, results
        return (EXIT_VIOLATIONS if results.failing else EXIT_OK), results

    def _hints(self, results: Results, by_hand: dict[str, bool]) -> None:
        """A limited token nothing refused, an other token that sees the owner's records: the
        tokens may be wrong rather than the backend; say so beside the violations."""
        keys = {(v.check, v.key) for v in results.violations}
        if ("scopes", "none-refused") in keys:
            results.hints.append(
                "no operation refused --limited-token: "
                + (
                    "check that the token you gave lacks a write scope; if so, the backend ignores scopes"
                    if by_hand["limited"]
                    else "the suite minted it without the :write scopes, so the backend ignores scopes"
                )
            )
        if keys & {("tenancy", "read"), ("tenancy", "list")}:
            results.hints.append(
                "--other-token sees records created with --token: "
                + (
                    "check that it belongs to a different account; if it does, the backend ignores isolation"
                    if by_hand["other"]
                    else "the suite minted it in another account, so the backend ignores isolation"
                )
            )
        for hint in results.hints:
            self.log(f"CHECK YOUR TOKENS: {hint}")

    _signals = 0

    def _aborted(self) -> bool:
        return self._signals >= 2

    def _on_signals(self, budget: Budget) -> Callable[[], None]:
        """SIGINT / SIGTERM stop the run cleanly (cleanup and reports follow); a second one skips
        the cleanup. Only the main thread can install handlers: elsewhere this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: object) -> None:
            self._signals += 1
            budget.interrupt(f"stopped by {signal.Signals(signum).name}")

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for sig, old in previous.items():
                with contextlib.suppress(ValueError, TypeError):
                    signal.signal(sig, old)

        return restore

    def _meta(self, contract: Contract, base_url: str) -> dict[str, str]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            tool = version("api-sandbox")
        except PackageNotFoundError:
            tool = "unknown"
        try:
            st = version("schemathesis")
        except PackageNotFoundError:
            st = "unknown"
        o = self.options
        return {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "tool": f"conformance {tool} (schemathesis {st})",
            "spec": f"{contract.title} {contract.version}",
            "backend": base_url,
            "profile": o.profile,
            "seed": "random" if o.seed is None else str(o.seed),
            "phases": ",".join(o.phases) or "none",
            "checks": ",".join(o.checks) or "none",
            "max examples": str(o.max_examples),
            "host": os.uname().nodename if hasattr(os, "uname") else "",
        }

    def _family(self, ctx: Context, fam: Family) -> None:
        reason = fam.applies(ctx.contract) if fam.applies else None
        if reason:
            ctx.results.skip(fam.name, reason)
            self.log(f"{fam.name}: does not apply: {reason}")
            return
        missing = [n for n in fam.needs if not ctx.tokens.get(n)]
        if missing:
            flag = ", ".join(f"--{n}-token" for n in missing)
            ctx.results.skip(fam.name, f"SKIPPED: needs {flag} (not given)")
            self.log(f"{fam.name}: SKIPPED, needs {flag}")
            return
        self.log(f"{fam.name}: {fam.description}")
        ctx.client.budget.section = fam.name
        started = time.monotonic()
        try:
            fam.run(ctx)
        except httpx.HTTPError as exc:
            ctx.results.fail(
                fam.name, "*", f"the check could not complete, the backend failed: {exc!r}", key="transport"
            )
        except Exception as exc:
            tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
            ctx.results.fail(
                fam.name,
                "*",
                f"the check could not complete: {tb}",
                key="crash",
                response=traceback.format_exc(limit=4),
            )
        ctx.results.ran[fam.name] = time.monotonic() - started
