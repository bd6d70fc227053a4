"""Load generators: wrk (preferred, from Debian's `wrk` package) or, when it is not installed,
a small asyncio keep-alive HTTP/1.1 client run in its own process (`python -m bench.pyload`).

Both take one `Scenario` (method, paths, headers, body) and return the same summary dict:
requests, seconds, rps, p50/p90/p99/max/mean latency in ms, socket errors and non-2xx count.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Scenario:
    name: str  # list | get | create
    method: str
    paths: list[str]  # rotated per request
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def detect(preferred: str = "auto") -> tuple[str, str]:
    """(kind, version) of the generator to use: `wrk` when installed, else `python`."""
    if preferred in ("auto", "wrk"):
        exe = shutil.which("wrk")
        if exe:
            out = subprocess.run([exe, "-v"], capture_output=True, text=True)
            version = (
                (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr) else "wrk"
            )
            return "wrk", version.split(" Copyright")[0]
        if preferred == "wrk":
            raise SystemExit(
                "bench: --generator wrk asked for, but wrk is not installed (apt-get install wrk)"
            )
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    return "python", f"bench.pyload (asyncio raw HTTP/1.1 keep-alive, {loop}, 1 process)"


def _lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def wrk_script(sc: Scenario) -> str:
    lines = [f"wrk.method = {_lua_string(sc.method)}"]
    for k, v in sc.headers.items():
        lines.append(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}")
    if sc.body is not None:
        lines.append(f"wrk.body = {_lua_string(sc.body.decode())}")
    if len(sc.paths) > 1:
        lines.append("local paths = {" + ", ".join(_lua_string(p) for p in sc.paths) + "}")
        lines.append("local i = 0")
        lines.append(
            "request = function()\n  i = i + 1\n  return wrk.format(nil, paths[(i % #paths) + 1])\nend"
        )
    lines.append(
        """done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
    .. '"max_us":%d,"mean_us":%.1f,"connect":%d,"read":%d,"write":%d,"timeout":%d,"non2xx":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, e.connect, e.read, e.write, e.timeout, e.status))
end"""
    )
    return "\n".join(lines) + "\n"


def _pin(cpus: set[int] | None):
    if not cpus:
        return None

    def apply() -> None:
        os.sched_setaffinity(0, cpus)

    return apply


def run(
    kind: str,
    base_url: str,
    sc: Scenario,
    connections: int,
    duration: float,
    workdir: Path,
    cpus: set[int] | None = None,
) -> dict[str, Any]:
    if kind == "wrk":
        script = workdir / f"wrk_{sc.name}.lua"
        script.write_text(wrk_script(sc), encoding="utf-8")
        url = base_url + sc.paths[0]
        cmd = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "60s",
            "-s",
            str(script),
            url,
        ]
    else:
        spec = workdir / f"py_{sc.name}.json"
        spec.write_text(
            json.dumps(
                {
                    "base_url": base_url,
                    "method": sc.method,
                    "paths": sc.paths,
                    "headers": sc.headers,
                    "body": sc.body.decode() if sc.body is not None else None,
                    "connections": connections,
                    "duration": duration,
                }
            ),
            encoding="utf-8",
        )
        cmd = [sys.executable, "-m", "bench.pyload", str(spec)]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=duration + 180,
        preexec_fn=_pin(cpus),
        cwd=Path(__file__).resolve().parent.parent,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(
            f"load generator failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}"
        )
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 3),
        "rps": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p90_ms": round(raw["p90_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        "max_ms": round(raw["max_us"] / 1000, 3),
        "mean_ms": round(raw["mean_us"] / 1000, 3),
        "socket_errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        "non2xx": raw["non2xx"],
    }
