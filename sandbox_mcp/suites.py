"""The conformance suite and the rate-limit verifier, run as a developer runs them: their own
CLIs in a subprocess (`python -m conformance run`, `python -m load ratelimit`), tokens passed
in the environment (never on a command line), reports written where the tool says."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from load import token_env_vars

from .control import SandboxError

GRACE_SECONDS = 300  # beyond a run's own budget: its cleanup and reports


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


Tick = Callable[[float, float], Awaitable[None]]  # (seconds elapsed, at most): a progress report
PROGRESS_EVERY = 3.0  # seconds: clients that reset their timeout on progress keep waiting


async def run(cmd: list[str], env: dict[str, str], limit: float, tick: Tick | None = None) -> Finished:
    """Run `cmd`, its output captured (never onto the MCP server's own stdout), `tick` called every
    few seconds while it runs; killed after `limit` s."""
    full = {**os.environ, **env}

    async def ticking() -> None:
        started = time.monotonic()
        while tick is not None:
            await anyio.sleep(PROGRESS_EVERY)
            try:
                await tick(time.monotonic() - started, limit)
            except Exception:  # a client gone or refusing progress: the run goes on
                return

    try:
        with anyio.fail_after(limit):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ticking)
                done = await anyio.run_process(cmd, env=full, check=False, stdin=subprocess.DEVNULL)
                tasks.cancel_scope.cancel()
    except TimeoutError:
        raise SandboxError(f"{' '.join(cmd[2:4])} did not finish in {limit:.0f} s: stopped") from None
    return Finished(
        done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    )


def _duration(value: str) -> float:
    """`90s`, `5m`, `1h` or a number of seconds (the suites' own parsing refuses anything else)."""
    v = value.strip()
    scale = {"s": 1, "m": 60, "h": 3600}.get(v[-1:], 1)
    try:
        return float(v.rstrip("smh")) * scale
    except ValueError:
        raise SandboxError(f"not a duration: {value!r} (e.g. 90s, 5m, 1h)") from None


def _usage_error(tool: str, done: Finished) -> SandboxError:
    lines = [
        line for line in done.stderr.splitlines() if line.strip() and not line.startswith("[conformance]")
    ]
    return SandboxError(f"{tool} refused to run (exit 2): {' '.join(lines[-3:]) or done.stdout[-500:]}")


async def conformance(
    *,
    api: str,
    sandbox_url: str,
    base_url: str | None,
    profile: str,
    max_time: str,
    max_examples: int,
    phases: str | None,
    checks: str | None,
    rate_limit: str,
    seed: int | None,
    tokens: dict[str, str | None],
    admin_token: str | None,
    reports: Path,
    tick: Tick | None = None,
) -> dict[str, Any]:
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.monotonic_ns() % 10**6:06d}"
    try:
        reports.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SandboxError(
            f"cannot write reports to {reports}: {exc} (start it with --reports DIR)"
        ) from None
    markdown, junit = reports / f"{api}-{stamp}.md", reports / f"{api}-{stamp}.xml"
    cmd = [sys.executable, "-m", "conformance", "run", "--api", api, "--quiet"]
    cmd += ["--profile", profile, "--max-time", max_time, "--max-examples", str(max_examples)]
    cmd += ["--rate-limit", rate_limit, "--report", str(markdown), "--junit-xml", str(junit)]
    cmd += ["--base-url", base_url] if base_url else ["--sandbox", sandbox_url]
    for flag, value in (("--phases", phases), ("--checks", checks), ("--seed", seed)):
        if value is not None:
            cmd += [flag, str(value)]
    env = {name: value for name, value in tokens.items() if value}
    if admin_token and not base_url:
        env["SANDBOX_ADMIN_TOKEN"] = admin_token
    done = await run(cmd, env, _duration(max_time) + GRACE_SECONDS, tick)
    if done.code == 2:
        raise _usage_error("the conformance suite", done)
    outcome = {0: "no violation", 1: "violations found", 3: "incomplete (stopped by --max-time)"}
    result = next((ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("RESULT:")), None)
    return {
        "exit_code": done.code,
        "outcome": outcome.get(done.code, f"exit {done.code}"),
        "result": result,
        "target": base_url or f"{sandbox_url} (the sandbox; tokens minted in fresh accounts)",
        "profile": profile,
        "report": str(markdown.resolve()) if markdown.exists() else None,
        "junit_xml": str(junit.resolve()) if junit.exists() else None,
        "summary": done.stdout[-12000:],
    }


async def rate_limits(
    *,
    api: str,
    base_url: str,
    token: str,
    window: float | None,
    users: int,
    buckets: list[str] | None,
    max_requests: int | None,
    max_time: float | None,
    profile: str,
    tick: Tick | None = None,
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "load", "ratelimit", "--api", api, "--base-url", base_url]
    cmd += ["--users", str(users), "--profile", profile]
    for flag, value in (("--window", window), ("--max-requests", max_requests), ("--max-time", max_time)):
        if value is not None:
            cmd += [flag, str(value)]
    for bucket in buckets or []:
        cmd += ["--bucket", bucket]
    # a full run waits about six windows (6 min at a documented 60 s); ours stops it a little beyond
    limit = (max_time or 8 * (window or 60) + 60) + GRACE_SECONDS
    done = await run(cmd, {token_env_vars(api)[0]: token}, limit, tick)
    if done.code == 2:
        raise _usage_error("the rate-limit verifier", done)
    verdict = next((ln for ln in reversed(done.stdout.splitlines()) if ln.startswith(("PASS", "FAIL"))), None)
    return {
        "exit_code": done.code,
        "holds": done.code == 0,
        "verdict": verdict,
        "output": (done.stdout + done.stderr)[-12000:],
    }
