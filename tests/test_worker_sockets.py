"""`serve --workers N` on Linux: a listening socket per worker (SO_REUSEPORT), so the kernel
spreads connections opened all at once over the workers; a second `serve --workers` on the same
port is refused (it would otherwise bind beside the first and take half its connections); a
worker killed is restarted on its own socket. Real processes; `/_mock/health` names the pid of
the worker that answered on a connection."""

from __future__ import annotations

import contextlib
import http.client
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mock_server.listeners import REUSEPORT
from tests.live import ROOT, live_sandbox
from tests.robustness.support import ServerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REUSEPORT, reason="SO_REUSEPORT spreading is Linux's"),
]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    data = tmp_path_factory.mktemp("workers") / "state.json"
    with live_sandbox("--workers", "2", "--data", str(data), "--api", "cloudnexus") as base:
        port = urlsplit(base).port
        assert port is not None
        yield base, port


def _pids_of(port: int, n: int, timeout: float = 10) -> Counter[int]:
    """Open `n` keep-alive connections at once (every handshake done before the first request),
    then ask each which worker holds it."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=timeout) for _ in range(n)]
    try:
        for c in conns:
            c.connect()
        pids: Counter[int] = Counter()
        for c in conns:
            c.request("GET", "/_mock/health")
            r = c.getresponse()
            assert r.status == 200
            pids[json.loads(r.read())["pid"]] += 1
        return pids
    finally:
        for c in conns:
            c.close()


def _second_serve(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """Another `serve` on `port`: refused with one line naming it (exit 2), not served."""
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--port", str(port), "--api", "cloudnexus", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "SANDBOX_ADMIN_TOKEN": "a-long-enough-token"},  # --host 0.0.0.0 would want one
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and f":{port}" in done.stderr, done.stderr
    return done


def test_connections_opened_at_once_are_spread_over_both_workers(sandbox: tuple[str, int]) -> None:
    _, port = sandbox
    pids = _pids_of(port, 32)
    # hashed over two sockets: fewer than 4 of 32 on one has probability ~1e-6
    assert len(pids) == 2 and min(pids.values()) >= 4, pids


def test_a_second_workers_serve_on_the_port_is_refused(sandbox: tuple[str, int], tmp_path: Path) -> None:
    _, port = sandbox
    before = set(_pids_of(port, 32))
    _second_serve(port, "--workers", "2", "--data", str(tmp_path / "other.json"))
    assert not (tmp_path / "other.json").exists()  # refused before its store was opened
    # the first keeps every connection: none reaches a process of the refused one
    pids = _pids_of(port, 32)
    assert set(pids) == before and sum(pids.values()) == 32


@pytest.mark.parametrize("first_workers", [True, False], ids=["workers-first", "single-first"])
def test_workers_and_one_process_on_one_port_refuse_each_other(tmp_path: Path, first_workers: bool) -> None:
    """A plain socket (no SO_REUSEPORT) and a worker's socket conflict in the kernel itself,
    whichever comes first, and whichever of 127.0.0.1 and 0.0.0.0 each binds."""
    first = ("--workers", "2") if first_workers else ()
    second = () if first_workers else ("--workers", "2")
    with live_sandbox(*first, "--data", str(tmp_path / "a.json"), "--api", "cloudnexus") as base:
        port = urlsplit(base).port
        assert port is not None
        for host in ("127.0.0.1", "0.0.0.0"):
            _second_serve(port, *second, "--host", host, "--data", str(tmp_path / "b.json"))


def _gone(pid: int) -> bool:
    """Dead (a zombie until the supervisor reaps it: its sockets are closed either way)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_killed_worker_is_restarted_on_its_own_socket(tmp_path: Path) -> None:
    """Connections the kernel hashes to a dead worker's socket wait in it (the parent holds it
    open) for the worker the supervisor starts in its place: every one is answered."""
    with live_sandbox("--workers", "2", "--data", str(tmp_path / "s.json"), "--api", "cloudnexus") as base:
        port = urlsplit(base).port
        assert port is not None
        before = set(_pids_of(port, 32))
        assert len(before) == 2
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not _gone(victim):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        after = _pids_of(port, 32, timeout=60)  # some wait for the heir to start
        assert sum(after.values()) == 32
        assert len(after) == 2 and victim not in after and before - {victim} < set(after), (before, after)


@pytest.mark.parametrize("method", ["init_processes", "restart_all", "keep_subprocess_alive"])
def test_the_supervisor_is_uvicorns_but_for_the_socket(method: str) -> None:
    """`supervisor.SocketPerWorker` copies the methods that start a worker: if the installed
    uvicorn's differ (an upgrade), the copies must be brought up to date."""
    from uvicorn.supervisors.multiprocess import Multiprocess

    from mock_server.supervisor import SocketPerWorker

    slot = "len(self.processes)" if method == "init_processes" else "idx"
    theirs = inspect.getsource(getattr(Multiprocess, method))
    ours = inspect.getsource(getattr(SocketPerWorker, method))
    assert "Process(self.config, self.sockets)" in theirs
    assert ours == theirs.replace("Process(self.config, self.sockets)", f"self._process({slot})")


def test_workers_orphaned_by_a_kill_9_keep_the_port_theirs(tmp_path: Path) -> None:
    """`kill -9` of the parent alone: its workers go on serving on their sockets, and hold the
    port's lock too, so a new `serve --workers` (another data file) refuses to bind beside them."""
    first = ServerProcess(
        tmp_path, "--workers", "2", "--data", str(tmp_path / "a.json"), "--api", "cloudnexus"
    )
    first.start()
    assert first.proc is not None
    orphans = [
        int(p) for p in Path(f"/proc/{first.proc.pid}/task/{first.proc.pid}/children").read_text().split()
    ]
    try:
        workers = set(_pids_of(first.port, 32))
        assert workers <= set(orphans) and len(workers) == 2
        first.kill9()
        _second_serve(first.port, "--workers", "2", "--data", str(tmp_path / "b.json"))
        assert set(_pids_of(first.port, 32)) == workers  # the orphans still serve, every connection
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in orphans) and time.monotonic() < deadline:
            time.sleep(0.05)
