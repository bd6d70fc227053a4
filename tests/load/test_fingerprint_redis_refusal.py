"""`serve --store redis://` with a rate limit other than the sliding window: the Redis store's
Lua limiter keeps only that one for now, so the sandbox refuses at start, in one line (exit 2),
before it connects to anything."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .conftest import HOST, free_port, run


def test_a_non_sliding_limit_on_redis_is_refused_in_one_line(tmp_path: Path) -> None:
    ov = tmp_path / "ov.json"
    bucket = {"limit": 5, "window": 1, "algorithm": "fixed-window"}
    ov.write_text(json.dumps({"rate-limits": {"nurosentrix": {"buckets": {"b": bucket}}}}))
    args = [sys.executable, "-m", "mock_server", "serve", "--host", HOST, "--port", str(free_port())]
    r = run([*args, "--api", "nurosentrix", "--store", "redis://127.0.0.1:1/0", "--rate-limits", str(ov)], 60)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nurosentrix.b (fixed-window)" in lines[0] and "sliding-window" in lines[0]
