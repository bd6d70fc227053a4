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
from urllib.parse import urlsplit

import httpx

from contract import Contract, SpecError, load
from judge.profile import Profile
from judge.response import judged_problems

from . import baseline, report
from .budget import Budget, BudgetError, Interrupted
from .checks import ORDER, Context, load_all
from .cleanup import Tracker
from .factory import Factory
from .http import TOKEN_VARS, Client, Exchange
from .progress import Progress
from .results import Results, is_success

EXIT_OK, EXIT_VIOLATIONS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3
ADMIN_VAR = "SANDBOX_ADMIN_TOKEN"


class UsageError(Exception):
    """Bad options, an unreachable backend or a rejected token: exit 2."""


@dataclass
class Options:
    api: str
    base_url: str | None = None
    token: str | None = None
    limited_token: str | None = None
    other_token: str | None = None
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
    success_paths: bool = True  # a last request for each operation that never answered 2xx


@dataclass
class Tokens:
    token: str
    limited: str | None = None
    other: str | None = None
    limited_scopes: list[str] | None = None
    revoked: str | None = None
    login: tuple[str, str] | None = None  # a user the sandbox made for the login operation

    def as_dict(self) -> dict[str, str | None]:
        return {"token": self.token, "limited": self.limited, "other": self.other}


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
    except httpx.HTTPError as exc:
        raise UsageError(f"cannot reach the sandbox control API at {root}/_mock: {exc}") from None
    return tokens, f"{root}{base_path}"


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
            if o.limited_token:
                tokens.limited_scopes = None
            base_url = o.base_url or derived
        else:
            if not o.token or not o.base_url:
                raise UsageError("--base-url and --token are required (or --sandbox URL to mint tokens)")
            tokens = Tokens(o.token, o.limited_token, o.other_token)
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
        documented = urlsplit(contract.server_url).path.rstrip("/")
        given = urlsplit(base_url)
        hint = ""
        origin = f"{given.scheme}://{given.netloc}"
        if documented and not given.path.rstrip("/").endswith(documented):
            hint = (
                f"; the spec's base path is {documented!r} (servers[0].url {contract.server_url}): "
                f"try --base-url {origin}{given.path.rstrip('/')}{documented}"
            )
        try:  # a sandbox at that origin serves the API under its own path
            health = httpx.get(f"{origin}/_mock/health", timeout=5)
            served = (
                (health.json().get("apis") or {}).get(contract.name) if health.status_code == 200 else None
            )
        except (httpx.HTTPError, ValueError, AttributeError):
            served = None
        if served:
            hint += f"; a sandbox answers at {origin}: use --base-url {origin}{served} or --sandbox {origin}"
        return (
            f"every documented GET tried at --base-url {base_url} answered 404 ({', '.join(tried)}): "
            f"is it the API's base URL?{hint}"
        )

    def run(self) -> tuple[int, Results]:
        o = self.options
        contract, tokens, base_url = self.prepare()
        try:
            budget = Budget(o.rate_limit, contract.buckets)
        except BudgetError as exc:
            raise UsageError(str(exc)) from None
        judge = Profile.named(o.profile).view(contract)
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
        secrets_shown = {v: f"${TOKEN_VARS[k]}" for k, v in tokens.as_dict().items() if v}
        if tokens.revoked:
            secrets_shown[tokens.revoked] = "$CONFORMANCE_REVOKED_TOKEN"
        if o.admin_token:
            secrets_shown[o.admin_token] = f"${ADMIN_VAR}"
        if o.webhook_secret:
            secrets_shown[o.webhook_secret] = "$CONFORMANCE_WEBHOOK_SECRET"
        if o.login_password:
            secrets_shown[o.login_password] = "$CONFORMANCE_LOGIN_PASSWORD"
        if tokens.login:
            secrets_shown[tokens.login[1]] = "$CONFORMANCE_LOGIN_PASSWORD"
        selected = [c for c in ORDER if c in o.checks]
        families = load_all()
        tracker = Tracker(contract, tokens.as_dict())

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
            for check in ("envelope", "ratelimit"):
                if check not in selected:
                    continue
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

        client = Client(base_url, contract, budget, tokens.as_dict(), [observe], timeout=o.timeout)
        factory = Factory(contract, client)
        ctx = Context(
            contract,
            client,
            results,
            factory,
            tokens.as_dict(),
            limited_scopes=tokens.limited_scopes,
            revoked_token=tokens.revoked,
            judge=judge,
        )
        steps = [n for n in selected if n != "ratelimit"]
        steps += [f"schemathesis {p}" for p in o.phases] + ["success paths"] * o.success_paths + ["cleanup"]
        steps += ["ratelimit"] if "ratelimit" in selected else []
        mode = "off" if o.quiet else o.progress
        progress = Progress(budget, results, steps, mode, interval=o.progress_interval, max_time=o.max_time)
        self.log = progress.log
        progress.start()
        restore = self._on_signals(budget)
        timer = None
        if o.max_time is not None:
            timer = threading.Timer(o.max_time, budget.interrupt, (f"--max-time {o.max_time:g}s reached",))
            timer.daemon = True
            timer.start()
        self.log(f"{contract.name} at {base_url}; budget: {budget.describe()}")
        try:
            try:
                budget.section = "preflight"
                self.preflight(client, contract)
                for name in selected:
                    if name == "ratelimit":
                        continue
                    self._family(ctx, families[name])
                    if budget.stop.is_set():
                        raise Interrupted(budget.stop_reason or "stopped")
                self._hints(results, by_hand={"limited": bool(o.limited_token), "other": bool(o.other_token)})
                if o.phases:
                    self.log(f"schemathesis: phases {', '.join(o.phases)}, max {o.max_examples} examples")
                    from . import schemathesis_phase

                    schemathesis_phase.run(
                        contract,
                        results,
                        budget,
                        base_url=base_url,
                        token=tokens.token,
                        other_token=tokens.other,
                        phases=o.phases,
                        max_examples=o.max_examples,
                        seed=o.seed,
                        selected=selected,
                        progress=self.log,
                        judge=judge,
                        tracker=tracker,
                    )
                else:
                    results.skip("schemathesis", "no Schemathesis phase selected (--phases none)")
                if budget.stop.is_set():
                    raise Interrupted(budget.stop_reason or "stopped")
                if o.success_paths:
                    budget.section = "success paths"
                    from .success import exercise

                    login = tokens.login
                    if o.login_email and o.login_password:
                        login = (o.login_email, o.login_password)
                    reached = exercise(contract, factory, results, o.webhook_secret, login)
                    if reached:
                        self.log(f"success paths: a 2xx at last for {', '.join(reached)}")
            except Interrupted:
                results.incomplete = budget.stop_reason or "interrupted"
                self.log(f"STOPPING: {results.incomplete}; cleaning up and writing the reports")
            if timer is not None:
                timer.cancel()
            budget.resume()
            budget.section = "cleanup"
            if o.keep_resources:
                self.log("cleanup: skipped (--keep-resources)")
            else:
                self.log(f"cleaning up {len(tracker.pending())} record(s), children first")
                tracker.cleanup(client, abort=self._aborted)
            results.cleanup = tracker.summary(kept=o.keep_resources)
            if tracker.spared:
                results.notes.append(
                    f"{tracker.spared} Schemathesis write(s) aimed at a record the run did not create (an id "
                    "it saw in a response) went to a stand-in id instead: the suite changes only its records"
                )
            self.log(f"cleanup: {results.cleanup}")
            if "ratelimit" in selected and results.incomplete is None:
                self._family(ctx, families["ratelimit"])
        finally:
            if timer is not None:
                timer.cancel()
            restore()
            progress.stop()
            client.close()
        results.requests = budget.requests + client.unpaced
        results.rate_limited = budget.rate_limited
        results.notes.append(f"budget: {budget.describe()}; waited {budget.waited:.1f}s for it")
        counts = ", ".join(f"{k}={v}" for k, v in sorted(budget.by_bucket.items()) if k != "*")
        floor = budget.estimate(contract.buckets)
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
        for note in ctx.notes:
            results.notes.append(note)
        report.write_all(results, o.junit_xml, o.report, secrets_shown)
        if o.write_baseline:
            baseline.write(o.write_baseline, results, secrets_shown)
        print(report.summary(results, secrets_shown))
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

    def _family(self, ctx: Context, fam: object) -> None:
        from .checks import Family

        assert isinstance(fam, Family)
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
