"""Instructions per request, counted by valgrind's callgrind: the same ratios as `python -m bench`
(the sandbox ÷ the ceiling, on the same uvicorn settings) without the machine's noise. Each
server runs under callgrind; after 100 unmeasured requests its counters are zeroed, N requests
are sent one after another on one keep-alive connection, and the counters are dumped. Counts
are user-space instructions of every thread (not the kernel's: a create's fsync is not in
them), so req/s under load stays `python -m bench`'s to measure; these tell where a change
moved the work, repeatably (the same count twice within ~2%, whatever else the machine does).

    python -m bench.instructions [--requests 2000] [--kinds list,get,create]

Needs `valgrind` (Debian's package).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import datafile
from .baselines import capture
from .servers import ROOT, Server, free_port

TARGETS = ("ceiling", "handler", "sandbox")


def _start(target: str, port: int, tmp: Path, out: Path) -> subprocess.Popen[bytes]:
    if target == "sandbox":
        cmd = ["-m", "mock_server", "serve", "--api", datafile.API, "--port", str(port),
               "--data", str(tmp / "data.json"), "--seed", str(tmp / "seed.json"),
               "--rate-window", "0.001"]  # fmt: skip
    else:
        cmd = ["-m", "bench.baselines", "--mode", target, "--port", str(port), "--bodies", str(tmp)]
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    env = {**os.environ, "BENCH_TOKEN": datafile.TOKEN, "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [*valgrind, sys.executable, *cmd], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _send(conn: http.client.HTTPConnection, kind: str, ids: list[str], i: int) -> None:
    base, auth = datafile.BASE_PATH, {"Authorization": f"Bearer {datafile.TOKEN}"}
    if kind == "list":
        conn.request("GET", f"{base}/servers", headers=auth)
    elif kind == "get":
        conn.request("GET", f"{base}/servers/{ids[i % 100]}", headers=auth)
    else:
        body = json.dumps(datafile.CREATE_BODY).encode()
        conn.request("POST", f"{base}/servers", body, {**auth, "Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    if r.status >= 300:
        raise RuntimeError(f"{kind}: {r.status}")


def count(target: str, kind: str, n: int, tmp: Path, ids: list[str]) -> int:
    """Instructions per request of `target` serving `kind`."""
    port, out = free_port(), tmp / f"cg-{target}-{kind}.out"
    work = tmp / f"{target}-{kind}"
    work.mkdir()
    for name in ("data.json", "seed.json", "list.json", "get.json", "create.json"):
        shutil.copy(tmp / name, work / name)
    proc = _start(target, port, work, out)
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{target} did not start under valgrind") from None
                time.sleep(0.5)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for i in range(100):
            _send(conn, kind, ids, i)
        subprocess.run(["callgrind_control", "--zero", str(proc.pid)], capture_output=True, check=True)
        for i in range(n):
            _send(conn, kind, ids, i)
        subprocess.run(["callgrind_control", "--dump", str(proc.pid)], capture_output=True, check=True)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(120)
    total = 0
    for dump in tmp.glob(f"{out.name}.*"):
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                total = max(total, int(line.split()[1]))
    return total // n


def _capture(tmp: Path) -> list[str]:
    """The data file, the token seed and the sandbox's own answers (the baselines serve them)."""
    ids = datafile.write_tinydb_file(tmp / "data.json", 1000)
    datafile.write_token_seed(tmp / "seed.json")
    data = tmp / "capture.json"
    shutil.copy(tmp / "data.json", data)
    port = free_port()
    cmd = [sys.executable, "-m", "mock_server", "serve", "--api", datafile.API, "--port", str(port),
           "--data", str(data), "--seed", str(tmp / "seed.json")]  # fmt: skip
    srv = Server("capture", cmd, port, "/_mock/health", tmp)
    srv.start()
    try:
        bodies, _ = capture(srv.base + datafile.BASE_PATH, ids[0], datafile.TOKEN)
    finally:
        srv.stop()
    for kind, body in bodies.items():
        (tmp / f"{kind}.json").write_bytes(body)
    return ids


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    p.add_argument("--requests", type=int, default=2000, help="measured requests per server (default 2000)")
    p.add_argument("--kinds", default="list,get,create")
    p.add_argument("--jobs", type=int, default=2, help="servers counted at once (default 2)")
    a = p.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (apt-get install valgrind): nothing counted", file=sys.stderr)
        return 2
    kinds = [k for k in a.kinds.split(",") if k]
    tmp = Path(tempfile.mkdtemp(prefix="bench-instr-"))
    try:
        ids = _capture(tmp)
        jobs = [(t, k) for k in kinds for t in TARGETS]
        with concurrent.futures.ThreadPoolExecutor(a.jobs) as pool:
            counts = dict(zip(jobs, pool.map(lambda j: count(*j, a.requests, tmp, ids), jobs), strict=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"instructions per request ({a.requests} requests each, one keep-alive connection)")
    print(f"{'request':<8} {'ceiling':>10} {'handler':>10} {'sandbox':>10}  ceiling ÷ sandbox")
    for k in kinds:
        c, h, s = (counts[(t, k)] for t in TARGETS)
        print(f"{k:<8} {c:>10,} {h:>10,} {s:>10,}  {c / s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
