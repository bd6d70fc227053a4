"""Writes that fail, fail honestly. An append to the journal that cannot complete (a full disk,
a folder the sandbox may not write, an I/O error; injected here into `os.write` on the
journal's descriptor, sometimes after half a line went out) is cut back and undone in memory,
and answered 507 `INSUFFICIENT_STORAGE` (503 `STORAGE_UNAVAILABLE` for the others) in the API's
envelope; reads go on; writes succeed again by themselves once the fault is gone; after a
restart the store holds exactly the acknowledged writes, in one process and with two sharing the
file (`--workers`). Measured before: creates answered 500 were saved anyway (0, 13 or 38 of 38),
and under `--workers` a full disk left the journal unreadable (4 of 4 runs). A real small tmpfs,
with real processes, where this machine lets the test mount one (`test_real_full_disk`)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server.app import SandboxApp
from mock_server.clock import FrozenClock
from mock_server.ids import IdGenerator
from mock_server.lockfile import DataFolderUnusable, check_writable
from mock_server.sandbox import Sandbox
from mock_server.store_tinydb import TinyDBStore
from tests.apis import error_code
from tests.conftest import all_specs
from tests.live import ROOT
from tests.robustness.support import Counting, ServerProcess, count, live_seen
from tests.sandbox_client import SyncASGIClient

N = "/nurosentrix/api/v1"
SERVER = {"name": "web", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}
SPECS = [s for s in all_specs() if s.name == "nurosentrix"]


class Fault:
    """Makes `os.write` to the files in `paths` fail with `err` (after `partial` bytes of every
    other call went out, when set), while `on`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, err: int, partial: int = 0) -> None:
        self.err, self.partial, self.on, self.paths, self.hits = err, partial, False, set[str](), 0
        self.only: Callable[[], int | None] | None = None  # or: only this descriptor (one store's)
        real = os.write

        def write(fd: int, data: Any) -> int:
            if self.on and self._targets(fd):
                self.hits += 1
                if self.partial and self.hits % 2 == 1:
                    return real(fd, bytes(data)[: self.partial])  # a short write; the next call fails
                raise OSError(self.err, os.strerror(self.err))
            return real(fd, data)

        monkeypatch.setattr(os, "write", write)

    def _targets(self, fd: int) -> bool:
        if self.only is not None:
            return fd == self.only()
        return os.readlink(f"/proc/self/fd/{fd}") in self.paths


class Node:
    """One process's view: a store on the file, a sandbox, a client with a token."""

    def __init__(self, data: Path, shared: bool, token: str | None = None) -> None:
        self.store = TinyDBStore(data, shared=shared, group_commit=True)
        ids = IdGenerator(seed=uuid.uuid4().int % 1000)
        self.sandbox = Sandbox(SPECS, self.store, clock=FrozenClock(), ids=ids, async_delay=0.0)
        self.token = token or self.sandbox.mint("nurosentrix", value="nsx_test_disk_faults_000001")[0]
        self.app = Counting(SandboxApp(self.sandbox))
        self.client = SyncASGIClient(
            self.app, base_url="http://sandbox.test" + N, headers={"Authorization": f"Bearer {self.token}"}
        )

    def journal(self) -> str:
        return str(self.store.journal_path.resolve())

    def create(self, name: str) -> httpx.Response:
        return self.client.post("/servers", json={**SERVER, "name": name})

    def ids(self) -> set[str]:
        r = self.client.get("/servers", params={"per_page": 100})
        assert r.status_code == 200, r.text
        assert r.json()["meta"]["total"] <= 100
        return {s["id"] for s in r.json()["data"]}

    def close(self) -> None:
        self.client.close()
        self.store.close()


def _refused(r: httpx.Response, err: int) -> None:
    status, code = (507, "INSUFFICIENT_STORAGE") if err == errno.ENOSPC else (503, "STORAGE_UNAVAILABLE")
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and error_code(body) == code, body  # Nurosentrix's own envelope
    count("disk_fault_refusals")


def _reopened(data: Path) -> set[str]:
    store = TinyDBStore(data)
    try:
        return {r["id"] for r in store.find("nurosentrix:servers")}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("err", "partial"),
    [(errno.ENOSPC, 0), (errno.ENOSPC, 7), (errno.EACCES, 0), (errno.EIO, 0)],
    ids=["ENOSPC", "ENOSPC-after-a-short-write", "EACCES", "EIO"],
)
def test_failed_appends_are_undone_answered_and_recovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int, partial: int
) -> None:
    data = tmp_path / "state.json"
    node = Node(data, shared=False)
    fault = Fault(monkeypatch, err, partial)
    acked = {node.create(f"ok-{i}").json()["data"]["id"] for i in range(5)}
    kept = sorted(acked)[0]
    before = node.client.get(f"/servers/{kept}").json()
    journal = node.store.journal_path.stat().st_size

    fault.paths, fault.on = {node.journal()}, True
    for i in range(5):
        _refused(node.create(f"lost-{i}"), err)
    _refused(node.client.patch(f"/servers/{kept}", json={"name": "renamed"}), err)
    _refused(node.client.delete(f"/servers/{kept}"), err)
    assert fault.hits >= 7
    # nothing of it anywhere: not in the journal, not in memory; reads go on
    assert node.store.journal_path.stat().st_size == journal
    assert node.ids() == acked
    assert node.client.get(f"/servers/{kept}").json() == before
    token = node.sandbox.tokens.list("nurosentrix")
    mint = SyncASGIClient(node.app).post("/_mock/tokens", json={"api": "nurosentrix"})
    assert mint.status_code in (503, 507) and mint.json()["error"]["code"], mint.text
    assert node.sandbox.tokens.list("nurosentrix") == token

    fault.on = False  # space is back: no restart needed
    acked |= {node.create(f"after-{i}").json()["data"]["id"] for i in range(3)}
    assert node.ids() == acked
    node.close()
    assert _reopened(data) == acked  # restart: exactly the acknowledged writes


def test_a_transaction_is_undone_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several writes in one transaction (a request's): one append, and on failure all undone —
    a put of a new record, an update, a delete and a drop — memory and indexes as before."""
    store = TinyDBStore(tmp_path / "state.json")
    store.index("t", "colour")
    for i in range(4):
        colour = "red" if i % 2 else "blue"
        store.insert("t", {"id": f"r{i}", "colour": colour, "_account": "a", "_mode": "test"})
    store.insert("other", {"id": "o1"})
    before = {t: store.find(t) for t in store.tables()}
    red = [r["id"] for r in store.scan("t", _account="a", _mode="test", colour="red")]
    fault = Fault(monkeypatch, errno.ENOSPC)
    fault.paths, fault.on = {str(store.journal_path.resolve())}, True
    for drop in (False, True):
        with pytest.raises(Exception) as caught, store.transaction():
            store.insert("t", {"id": "new", "colour": "red", "_account": "a", "_mode": "test"})
            store.update("t", "r0", {"colour": "red"})
            if drop:
                store.delete("t", "r1")
                store.drop("other")
        assert getattr(caught.value, "status", None) == 507
        assert {t: store.find(t) for t in store.tables()} == before
        assert [r["id"] for r in store.scan("t", _account="a", _mode="test", colour="red")] == red
    fault.on = False
    store.insert("t", {"id": "later", "colour": "red", "_account": "a", "_mode": "test"})
    store.close()
    again = TinyDBStore(tmp_path / "state.json")
    assert sorted(r["id"] for r in again.find("t")) == ["later", "r0", "r1", "r2", "r3"]
    again.close()


def test_shared_file_survives_a_failed_append(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two stores sharing one file, as `--workers` processes do: one cannot write (its short
    write cut back), the other goes on; the journal stays readable for both and a restart."""
    data = tmp_path / "state.json"
    a = Node(data, shared=True)
    b = Node(data, shared=True, token=a.token)
    fault = Fault(monkeypatch, errno.ENOSPC, partial=11)
    acked = {a.create(f"a-{i}").json()["data"]["id"] for i in range(3)}
    fault.only, fault.on = (lambda: a.store._journal), True  # the same file, b's descriptor unharmed
    for i in range(4):
        _refused(a.create(f"lost-{i}"), errno.ENOSPC)
        r = b.create(f"b-{i}")
        assert r.status_code == 201, r.text
        acked.add(r.json()["data"]["id"])
    assert a.ids() == acked == b.ids()
    fault.on = False
    acked |= {a.create(f"a-after-{i}").json()["data"]["id"] for i in range(2)}
    assert a.ids() == acked == b.ids()
    a.close()
    b.close()
    assert _reopened(data) == acked


def test_unwritable_data_folder_is_refused_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(DataFolderUnusable, match="cannot"):
        check_writable(blocker / "state.json")  # its folder is a file
    # a folder that refuses writes (root passes any permission check: the error is injected)
    real_open = os.open

    def refusing_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if str(path).endswith(".probe"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(DataFolderUnusable, match="Permission denied"):
        check_writable(tmp_path / "state.json")
    assert not any(tmp_path.glob("*.probe")) and not (tmp_path / "state.json").exists()


def test_serve_refuses_an_unusable_folder_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--data", str(blocker / "state.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and str(blocker) in done.stderr, done.stderr


# -- a real full disk -----------------------------------------------------------------------------
@contextmanager
def _small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: the full-disk behaviour is covered by the injected faults above")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the injected faults cover it")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(folder: Path, leave: int) -> Path:
    """A file taking all the space but `leave` bytes."""
    st = os.statvfs(folder)
    filler = folder / "filler"
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_real_full_disk(tmp_path: Path, workers: int) -> None:
    with _small_tmpfs(tmp_path / "disk", "2m") as disk:
        data = disk / "state.json"
        args = ("--data", str(data), "--async-delay", "0", "--no-rate-limit", "--api", "nurosentrix")
        proc = ServerProcess(tmp_path, *args, "--workers", str(workers))
        proc.start()
        try:
            token = _token(proc)
            auth = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=proc.base + N, headers=auth, timeout=10) as c:
                acked: set[str] = set()
                for i in range(20):
                    acked.add(_ok(live_seen(c.post("/servers", json={**SERVER, "name": f"ok-{i}"}))))
                filler = _fill(disk, leave=8 * 1024)
                refused = 0
                for i in range(400):
                    r = live_seen(c.post("/servers", json={**SERVER, "name": f"fill-{i}-" + "x" * 200}))
                    if r.status_code == 201:
                        acked.add(r.json()["data"]["id"])
                    else:
                        _refused(r, errno.ENOSPC)
                        refused += 1
                    if refused >= 10:
                        break
                assert refused >= 10, "the disk never filled"
                count("real_full_disk_refusals", refused)
                listed = _all_ids(c)
                assert listed == acked  # reads go on; what was refused is nowhere
                filler.unlink()  # space is back
                for i in range(10):
                    acked.add(_ok(live_seen(c.post("/servers", json={**SERVER, "name": f"after-{i}"}))))
                assert _all_ids(c) == acked
        finally:
            proc.stop()
        assert "Traceback" not in proc.output(), proc.output()[-3000:]
        again = ServerProcess(tmp_path, *args)
        again.start()
        try:
            token = _token(again)
            with httpx.Client(base_url=again.base + N, headers={"Authorization": f"Bearer {token}"}) as c:
                assert _all_ids(c) == acked  # restart: the journal is readable, exactly the acknowledged
        finally:
            again.stop()


def _token(proc: ServerProcess) -> str:
    r = live_seen(httpx.post(f"{proc.base}/_mock/tokens", json={"api": "nurosentrix"}))
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _ok(r: httpx.Response) -> str:
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["id"])


def _all_ids(c: httpx.Client) -> set[str]:
    out: set[str] = set()
    page = 1
    while True:
        r = live_seen(c.get("/servers", params={"page": page, "per_page": 100}))
        assert r.status_code == 200, r.text
        out |= {s["id"] for s in r.json()["data"]}
        if page * 100 >= r.json()["meta"]["total"]:
            return out
        page += 1



def test_a_failed_fsync_is_not_acknowledged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The append went out but the disk would not confirm it (fsync: EIO): the client is not
    told it was saved — 503 in the envelope, saying the outcome is unconfirmed — and the next
    write, once fsync works again, is acknowledged as usual."""
    node = Node(tmp_path / "state.json", shared=False)
    journal = node.journal()
    real = os.fsync

    def failing(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}") == journal:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fsync", failing)
    r = node.create("unconfirmed")
    assert r.status_code == 503 and error_code(r.json()) == "STORAGE_UNAVAILABLE", r.text
    assert "confirmed" in r.json()["error"]["message"]
    monkeypatch.setattr(os, "fsync", real)
    assert node.create("confirmed").status_code == 201
    node.close()
