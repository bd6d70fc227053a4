"""Operator mistakes with real processes: a second `serve` on a data file that a running sandbox
holds (another port; the same port, as `make serve` twice; `--workers` twice), and a second
`serve` on a busy port with a data file of its own. Each refuses at once with one line naming
the file and the PID holding it (or the port), exits non-zero and changes nothing: the running
server keeps its tokens, its clock, and every write it acknowledged, before and after a restart.
Measured before the lifetime lock: 200 to 3,200 acknowledged writes lost per trial, 5 of 5."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live import ROOT
from tests.robustness.support import ServerProcess, count, live_seen

pytestmark = pytest.mark.slow

N = "/nurosentrix/api/v1"
SERVER = {"name": "web", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}


def _printed_tokens(proc: ServerProcess) -> dict[str, str]:
    """The start-up tokens a server printed, by API."""
    out = proc.output()
    found = dict(re.findall(r"^  (\S+)\s+http://\S+\n\s+Authorization: Bearer (\S+)", out, re.M))
    assert "nurosentrix" in found, out
    return found


def _write(base: str, token: str, n: int, tag: str) -> list[str]:
    ids = []
    with httpx.Client(base_url=base + N, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        for i in range(n):
            r = live_seen(c.post("/servers", json={**SERVER, "name": f"{tag}-{i}"}))
            assert r.status_code == 201, r.text
            ids.append(r.json()["data"]["id"])
    return ids


def _stored(base: str, token: str) -> set[str]:
    with httpx.Client(base_url=base + N, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        out: set[str] = set()
        page = 1
        while True:
            body = live_seen(c.get("/servers", params={"page": page, "per_page": 100})).json()
            out |= {s["id"] for s in body["data"]}
            if page * 100 >= body["meta"]["total"]:
                return out
            page += 1


def _files(data: Path) -> dict[str, bytes]:
    """The store's files (data file, journals) byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(data.parent.glob(data.name + "*")) if p.is_file()}


def _second_serve(*args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    count("operator_mistakes_refused")
    return done.returncode, done.stderr.strip(), time.monotonic() - started


def _check_refused(rc: int, err: str, elapsed: float, *must: str) -> None:
    assert rc != 0
    assert len(err.splitlines()) == 1, err  # one line, no traceback
    for text in must:
        assert text in err, (text, err)
    assert elapsed < 15, elapsed


def _restart_keeps(tmp_path: Path, data: Path, acknowledged: list[str], *extra: str) -> None:
    """Stopped and started again on the file: every acknowledged write is there."""
    again = ServerProcess(tmp_path, "--data", str(data), "--async-delay", "0", "--no-rate-limit", *extra)
    again.start()
    try:
        token = _printed_tokens(again)["nurosentrix"]
        stored = _stored(again.base, token)
        lost = [i for i in acknowledged if i not in stored]
        count("operator_mistake_writes_checked", len(acknowledged))
        count("operator_mistake_writes_lost", len(lost))
        assert lost == []
    finally:
        again.stop()


@pytest.mark.parametrize("same_port", [False, True], ids=["another-port", "same-port"])
def test_second_serve_on_a_held_file_refuses_and_changes_nothing(tmp_path: Path, same_port: bool) -> None:
    data = tmp_path / "state.json"
    first = ServerProcess(tmp_path, "--data", str(data), "--async-delay", "0", "--no-rate-limit")
    first.start()
    try:
        token = _printed_tokens(first)["nurosentrix"]
        acknowledged = _write(first.base, token, 40, "before")
        files = _files(data)
        port = str(first.port) if same_port else "0"
        rc, err, elapsed = _second_serve("--data", str(data), "--port", port)
        _check_refused(rc, err, elapsed, str(data), f"pid {first.proc.pid}" if first.proc else "pid")
        assert _files(data) == files, "the refused start changed the store's files"
        # the first server is whole: its printed token works, it writes and reads as before
        acknowledged += _write(first.base, token, 40, "after")
        assert set(acknowledged) <= _stored(first.base, token)
    finally:
        first.stop()
    _restart_keeps(tmp_path, data, acknowledged)


def test_busy_port_refuses_before_touching_its_own_file(tmp_path: Path) -> None:
    """`make serve` twice with a different --data: "address already in use" comes before the
    store is opened, so the second file keeps its tokens (none revoked, none minted)."""
    mine = tmp_path / "mine.json"
    owner = ServerProcess(tmp_path, "--data", str(mine), "--async-delay", "0", "--no-rate-limit")
    owner.start()
    token = _printed_tokens(owner)["nurosentrix"]
    acknowledged = _write(owner.base, token, 10, "mine")
    owner.stop()
    files = _files(mine)
    other = ServerProcess(tmp_path, "--memory")
    other.start()
    try:
        rc, err, elapsed = _second_serve("--data", str(mine), "--port", str(other.port))
        _check_refused(rc, err, elapsed, f"127.0.0.1:{other.port}")
        assert _files(mine) == files
    finally:
        other.stop()
    _restart_keeps(tmp_path, mine, acknowledged)


def test_workers_started_twice_refuses_and_keeps_clock_and_writes(tmp_path: Path) -> None:
    data = tmp_path / "state.json"
    first = ServerProcess(
        tmp_path, "--data", str(data), "--async-delay", "0", "--no-rate-limit", "--workers", "2"
    )
    first.start()
    try:
        token = _printed_tokens(first)["nurosentrix"]
        acknowledged = _write(first.base, token, 40, "before")
        advanced = httpx.post(f"{first.base}/_mock/clock/advance", json={"seconds": 86400}).json()["epoch"]
        rc, err, elapsed = _second_serve("--data", str(data), "--port", "0", "--workers", "2")
        _check_refused(rc, err, elapsed, str(data), f"pid {first.proc.pid}" if first.proc else "pid")
        # the run directory was not emptied: the shared clock keeps its day ahead
        assert httpx.get(f"{first.base}/_mock/clock").json()["epoch"] >= advanced
        acknowledged += _write(first.base, token, 40, "after")
        assert set(acknowledged) <= _stored(first.base, token)
    finally:
        first.stop()
    _restart_keeps(tmp_path, data, acknowledged)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def test_orphaned_workers_keep_the_file_theirs(tmp_path: Path) -> None:
    """`kill -9` of the `--workers` parent alone: its workers go on serving the file, so a new
    `serve` refuses (naming the dead parent) until they are gone; then it starts, with every
    acknowledged write."""
    data = tmp_path / "state.json"
    first = ServerProcess(
        tmp_path, "--data", str(data), "--async-delay", "0", "--no-rate-limit", "--workers", "2"
    )
    first.start()
    assert first.proc is not None
    parent = first.proc.pid
    orphans: list[int] = []
    try:
        token = _printed_tokens(first)["nurosentrix"]
        acknowledged = _write(first.base, token, 20, "before")
        orphans = [p for p in _children(parent) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(orphans) == 2
        first.kill9()
        assert httpx.get(f"{first.base}/_mock/health").status_code == 200  # the orphans still serve
        acknowledged += _write(first.base, token, 20, "orphaned")
        rc, err, elapsed = _second_serve("--data", str(data), "--port", "0")
        _check_refused(rc, err, elapsed, str(data), f"pid {parent}", "--workers")
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in orphans:
            for _ in range(100):
                if not _alive(pid):
                    break
                time.sleep(0.1)
        first.stop()
    _restart_keeps(tmp_path, data, acknowledged)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
