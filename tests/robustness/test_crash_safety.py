"""Crash safety of the TinyDB file store, with real processes: `kill -9` in the middle of a
burst of writes (creates, renames, deletes, token mints from several threads), restart on the
same file, and every write that was answered 2xx is there, every acknowledged delete gone;
five rounds on one growing file. A corrupt data file at start is a clear error naming the
file, never a traceback, and the file is left byte for byte as it was."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mock_server.store_tinydb import StoreFileError, TinyDBStore
from tests.live import ROOT, free_port
from tests.robustness.support import ServerProcess, count, seen

ROUNDS = 5
WRITERS = 6
TOKEN = "nsx_test_crash_safety_token_0001"
N = "/nurosentrix/api/v1"


@dataclass
class Ledger:
    """What the server acknowledged, and what was in flight when it died (may or may not be in)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    names: dict[str, str] = field(default_factory=dict)  # id -> last acknowledged name
    deleted: set[str] = field(default_factory=set)
    in_flight_names: dict[str, str] = field(default_factory=dict)
    in_flight_deletes: set[str] = field(default_factory=set)
    tokens: list[str] = field(default_factory=list)
    acknowledged: int = 0


def _writer(base: str, ledger: Ledger, seed: int, stop: threading.Event) -> None:
    rng = random.Random(seed)
    mine: list[str] = []
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=base + N, headers=auth, timeout=10) as c:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                roll = rng.random()
                if mine and roll < 0.2:
                    rid = mine.pop(rng.randrange(len(mine)))
                    with ledger.lock:
                        ledger.in_flight_deletes.add(rid)
                    r = c.delete(f"/servers/{rid}")
                    seen(r.status_code, "live")
                    assert r.status_code == 204, r.text
                    with ledger.lock:
                        ledger.in_flight_deletes.discard(rid)
                        ledger.deleted.add(rid)
                        ledger.acknowledged += 1
                elif mine and roll < 0.45:
                    rid, name = rng.choice(mine), f"renamed-{seed}-{i}"
                    with ledger.lock:
                        ledger.in_flight_names[rid] = name
                    r = c.patch(f"/servers/{rid}", json={"name": name})
                    seen(r.status_code, "live")
                    assert r.status_code == 200, r.text
                    with ledger.lock:
                        ledger.in_flight_names.pop(rid, None)
                        ledger.names[rid] = name
                        ledger.acknowledged += 1
                else:
                    name = f"w{seed}-{i}"
                    body = {"name": name, "provider": "p", "region": "r", "size": "s"}
                    r = c.post("/servers", json=body)
                    seen(r.status_code, "live")
                    assert r.status_code == 201, r.text
                    rid = r.json()["data"]["id"]
                    with ledger.lock:
                        ledger.names[rid] = name
                        ledger.acknowledged += 1
                    mine.append(rid)
            except httpx.HTTPError:
                return  # the server is gone: whatever was in flight stays in flight


def _minter(base: str, ledger: Ledger, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=10) as c:
        while not stop.is_set():
            try:
                r = c.post("/_mock/tokens", json={"api": "cloudnexus", "account": "crash"})
            except httpx.HTTPError:
                return
            seen(r.status_code, "live")
            assert r.status_code == 201
            with ledger.lock:
                ledger.tokens.append(r.json()["token"])
                ledger.acknowledged += 1


def _stored(base: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with httpx.Client(base_url=base + N, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        page = 1
        while True:
            body = c.get("/servers", params={"page": page, "per_page": 100}).json()
            out.update({s["id"]: s["name"] for s in body["data"]})
            if page * 100 >= body["meta"]["total"]:
                return out
            page += 1


def _lost(base: str, ledger: Ledger) -> list[str]:
    stored = _stored(base)
    problems = []
    for rid, name in ledger.names.items():
        if rid in ledger.deleted:
            if rid in stored:
                problems.append(f"{rid}: delete acknowledged, still there")
        elif rid in ledger.in_flight_deletes:
            continue
        elif rid not in stored:
            problems.append(f"{rid}: create acknowledged, missing")
        elif stored[rid] not in (name, ledger.in_flight_names.get(rid)):
            problems.append(f"{rid}: name {stored[rid]!r}, acknowledged {name!r}")
    with httpx.Client(base_url=base + "/cloudnexus/v1", timeout=10) as c:
        for t in ledger.tokens:
            if c.get("/servers", headers={"Authorization": f"Bearer {t}"}).status_code != 200:
                problems.append(f"token {t[:15]}…: mint acknowledged, refused after restart")
    return problems


@pytest.mark.slow
def test_kill_9_mid_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    data = tmp_path / "state.json"
    proc = ServerProcess(tmp_path, "--data", str(data), "--no-rate-limit", "--async-delay", "0")
    proc.start()
    ledger = Ledger()
    rng = random.Random(20261123)
    try:
        r = httpx.post(f"{proc.base}/_mock/tokens", json={"api": "nurosentrix", "token": TOKEN})
        assert r.status_code == 201
        for round_no in range(ROUNDS):
            stop = threading.Event()
            threads = [
                threading.Thread(target=_writer, args=(proc.base, ledger, round_no * 100 + i, stop))
                for i in range(WRITERS)
            ]
            threads.append(threading.Thread(target=_minter, args=(proc.base, ledger, stop)))
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.4, 1.0))
            proc.kill9()  # SIGKILL, mid-burst
            stop.set()
            for t in threads:
                t.join(timeout=30)
            json.loads(data.read_text())  # the file on disk is whole
            proc.start()  # the same file: it must load
            assert not list(tmp_path.glob(".state.json.*.tmp")), "stale temp files are cleaned at start"
            lost = _lost(proc.base, ledger)
            count("acknowledged_writes_lost", len(lost))
            assert lost == [], f"round {round_no + 1}: {lost[:10]}"
        count("kill9_rounds", ROUNDS)
        count("acknowledged_writes", ledger.acknowledged)
        assert ledger.acknowledged > ROUNDS * 20, "the bursts wrote too little to mean anything"
        # the check itself can fail: a write the server never saw is reported lost
        assert _lost(proc.base, Ledger(names={"srv_neverwritten": "x"})) != []
    finally:
        proc.stop()


CORRUPT: dict[str, bytes] = {
    "truncated": b'{"_mock:tokens": {"1": {"id": "tok_a", "hash": "ab',
    "binary garbage": os.urandom(512).replace(b"{", b"x"),
    "invalid UTF-8": b'{"t": {"1": {"id": "\xff\xfe"}}}',
    "UTF-16": '{"t": {}}'.encode("utf-16"),
    "nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
    "NUL bytes": b"\x00" * 100,
    "top level list": b"[1, 2, 3]",
    "top level null": b"null",
    "table is a list": b'{"nurosentrix:servers": [1, 2]}',
    "document is a number": b'{"nurosentrix:servers": {"1": 5}}',
    "document without id": b'{"nurosentrix:servers": {"1": {"name": "x"}}}',
    "document id not a number": b'{"nurosentrix:servers": {"one": {"id": "srv_x"}}}',
    "id not a string": b'{"nurosentrix:servers": {"1": {"id": 7}}}',
    "duplicate ids": b'{"t": {"1": {"id": "x"}, "2": {"id": "x"}}}',
}


@pytest.mark.parametrize("content", list(CORRUPT.values()), ids=list(CORRUPT))
def test_a_corrupt_file_is_refused_naming_it_and_left_alone(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    mtime = path.stat().st_mtime_ns
    with pytest.raises(StoreFileError) as info:
        TinyDBStore(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime
    count("corrupt_files_refused")


def test_a_data_path_that_cannot_be_a_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "plain").write_text("x")
    for path in (tmp_path / "dir.json", tmp_path / "plain" / "state.json"):
        with pytest.raises(StoreFileError, match=str(path).replace(".", r"\.")):
            TinyDBStore(path)
    assert (tmp_path / "plain").read_text() == "x"


def test_an_empty_file_is_an_empty_sandbox(tmp_path: Path) -> None:
    """Zero bytes hold no data (atomic writes never leave one): it starts empty, like no file."""
    path = tmp_path / "state.json"
    path.write_bytes(b"")
    store = TinyDBStore(path)
    assert store.tables() == []
    store.insert("t", {"id": "x"})
    assert TinyDBStore(path).get("t", "x") == {"id": "x"}


@pytest.mark.parametrize("name", ["truncated", "table is a list", "document without id", "nested 100k deep"])
def test_the_cli_refuses_a_corrupt_file_with_one_line_and_no_traceback(tmp_path: Path, name: str) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(CORRUPT[name])
    port = free_port()
    r = subprocess.run(
        [sys.executable, "-m", "mock_server", "serve", "--data", str(path), "--port", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert str(path) in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert path.read_bytes() == CORRUPT[name]
    count("corrupt_files_refused")
