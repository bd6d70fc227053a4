"""The fingerprinter against the real sandbox serving each algorithm from a rate-limit overlay;
the fingerprint written back as an overlay and served again gives the same fingerprint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .conftest import HOST, Sandbox, free_port, run, spawn, stop, wait_http

L, W = 20, 2.0


def serve(overlay: Path) -> Sandbox:
    port = free_port()
    args = [sys.executable, "-m", "mock_server", "serve", "--host", HOST, "--port", str(port), "--memory"]
    proc = spawn([*args, "--async-delay", "0", "--api", "nurosentrix", "--rate-limits", str(overlay)])
    url = f"http://{HOST}:{port}"
    assert wait_http(f"{url}/_mock/health", proc), stop(proc)
    return Sandbox(url, ["nurosentrix"], proc)


def fingerprint(sb: Sandbox, tmp: Path, name: str) -> dict:
    out, ov = tmp / f"{name}.json", tmp / f"{name}-overlay.json"
    args = [sys.executable, "-m", "load", "fingerprint", "--api", "nurosentrix", "--base-url", sb.url]
    args += ["--token", sb.token("nurosentrix"), "--operation", "listServers", "--window", str(W)]
    r = run([*args, "--json", str(out), "--write-overlay", str(ov)], timeout=120)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(out.read_text())["groups"][0]


@pytest.mark.parametrize("algorithm", ["fixed-window", "sliding-window", "token-bucket"])
def test_overlay_round_trip(algorithm: str, tmp_path: Path) -> None:
    bucket = {"limit": L, "window": W, "algorithm": algorithm}
    if algorithm == "token-bucket":
        bucket["burst"] = L
    first = tmp_path / "given.json"
    first.write_text(
        json.dumps(
            {"rate-limits": {"nurosentrix": {"buckets": {"b": bucket}, "operations": {"listServers": ["b"]}}}}
        )
    )
    sb = serve(first)
    try:
        g = fingerprint(sb, tmp_path, "one")
    finally:
        stop(sb.proc)
    assert g["algorithm"] == algorithm and abs(g["limit"] - L) <= 1, g
    assert abs(g["window_s"] - W) <= 0.1 * W, g
    sb = serve(tmp_path / "one-overlay.json")
    try:
        again = fingerprint(sb, tmp_path, "two")
    finally:
        stop(sb.proc)
    assert again["algorithm"] == g["algorithm"] and abs(again["limit"] - g["limit"]) <= 2, again  # ±1 each
    assert abs(again["window_s"] - g["window_s"]) <= 0.1 * W, again
