"""`python -m bench stores` (or `python -m bench.stores`): the file store against Redis.

1. One sandbox process on the TinyDB file store vs one on Redis (`--store redis://`), pinned
   like the main benchmark: server (and redis-server) on the last CPU, load generator on the
   others, so both stores get the same CPU for the sandbox and its storage.
2. Two processes on Redis vs one, unpinned: two processes need two CPUs, and on a 2-core
   machine the load generator then shares them (the ratio is what this measures, not a
   ceiling). Two ways: `--workers 2` (one port, a listening socket per worker with SO_REUSEPORT
   on Linux, the kernel spreading connections by hash; with one shared socket, as before or
   elsewhere, a worker awake takes every connection waiting, so wrk's connections, opened at
   once, may all land on one worker: the report says how they were spread), and two
   replicas on two ports, half the connections each (as behind a load balancer).

GET /servers (first page of 1,000), GET /servers/{id} (100 ids rotated), POST /servers, at 32
connections, interleaved rounds, medians. Redis runs with `appendonly yes, appendfsync always`
(the durable setting, `docs/redis.md`). Writes bench/results/stores.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis

from . import datafile, loadgen
from .servers import ROOT, Server, free_port, split_cpus

PREFIX = "sandbox:"
REQUESTS = ("list", "get", "create")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench stores", description=__doc__)
    p.add_argument("--duration", type=float, default=4.0, help="seconds per measurement (default 4)")
    p.add_argument("--warmup", type=float, default=1.0, help="unrecorded seconds before each (default 1)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--size", type=int, default=1000, help="stored servers (default 1000)")
    p.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument(
        "--phase",
        choices=["all", "stores", "workers"],
        default="all",
        help="stores: file vs Redis, one process each; workers: Redis --workers 2 vs 1 (default all)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 1 s measurements, one round")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


def start_redis(folder: Path, cpus: set[int] | None) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench stores: redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "always", "--logfile", str(folder / "redis.log")]
    proc = subprocess.Popen(args, preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def load_redis(url: str, records: list[dict[str, Any]]) -> None:
    """The servers written straight into the layout `store_redis.py` reads (as `datafile.py`
    does for TinyDB): a hash of `[order, record]` per id, and the table named in the set."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    table = PREFIX + "t:" + datafile.TABLE
    pipe = client.pipeline()
    for i, r in enumerate(records, 1):
        pipe.hset(table, r["id"], json.dumps([i, r]))
    pipe.sadd(PREFIX + "tables", datafile.TABLE)
    pipe.execute()


class Replicas:
    """Several servers measured as one: the connections split between them, one wrk each."""

    def __init__(self, name: str, servers: list[Server]) -> None:
        self.name, self.servers = name, servers

    def start(self) -> None:
        for s in self.servers:
            s.start()

    def stop(self) -> None:
        for s in self.servers:
            s.stop()

    def drain(self) -> None:
        for s in self.servers:
            s.drain()


def spread(port: int) -> list[int]:
    """How the established connections to `port` are spread over processes (`ss`), most first."""
    try:
        out = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(Counter(re.findall(r"pid=(\d+)", out)).values(), reverse=True)


class StoresBench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.kind, self.gen_version = loadgen.detect(args.generator)
        self.tmp = Path(tempfile.mkdtemp(prefix="sandbox-bench-stores-"))
        self.server_cpus, self.gen_cpus = split_cpus()
        self.headers = {"Authorization": f"Bearer {datafile.TOKEN}"}
        self.t0 = time.perf_counter()

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def server(self, name: str, store: list[str], pinned: bool, extra: tuple[str, ...] = ()) -> Server:
        port = free_port()
        cmd = [sys.executable, "-m", "mock_server", "serve", "--api", datafile.API, "--port", str(port)]
        cmd += [*store, "--seed", str(self.seed), "--rate-window", "0.001", *extra]
        return Server(name, cmd, port, "/_mock/health", self.tmp, cpus=self.server_cpus if pinned else None)

    def scenarios(self, ids: list[str]) -> dict[str, loadgen.Scenario]:
        base = datafile.BASE_PATH
        body = json.dumps(datafile.CREATE_BODY).encode()
        gets = [f"{base}/servers/{i}" for i in ids[::10][:100]]
        posting = {**self.headers, "Content-Type": "application/json"}
        return {
            "list": loadgen.Scenario("list", "GET", [f"{base}/servers"], dict(self.headers)),
            "get": loadgen.Scenario("get", "GET", gets, self.headers),
            "create": loadgen.Scenario("create", "POST", [f"{base}/servers"], posting, body),
        }

    def measure(self, server: Server | Replicas, sc: loadgen.Scenario, pinned: bool) -> dict[str, Any]:
        a, gen = self.args, self.gen_cpus if pinned else None
        if isinstance(server, Replicas):
            return self.measure_replicas(server, sc)
        if a.warmup > 0:
            loadgen.run(self.kind, server.base, sc, a.connections, a.warmup, self.tmp, gen)
            server.drain()
        with ThreadPoolExecutor(1) as pool:  # how the connections were spread, mid-run
            seen = pool.submit(lambda: (time.sleep(a.duration / 2), spread(server.port))[1])
            r = loadgen.run(self.kind, server.base, sc, a.connections, a.duration, self.tmp, gen)
            r["spread"] = seen.result()
        server.drain()
        self.log(f"{server.name:<24} {sc.name:<6} {r['rps']:>8,.0f} req/s  p99 {r['p99_ms']:.1f} ms")
        return r

    def measure_replicas(self, group: Replicas, sc: loadgen.Scenario) -> dict[str, Any]:
        a, n = self.args, len(group.servers)

        def one(k: int, seconds: float) -> dict[str, Any]:
            folder = self.tmp / f"replica-{k}"
            folder.mkdir(exist_ok=True)
            s = group.servers[k]
            return loadgen.run(self.kind, s.base, sc, a.connections // n, seconds, folder, None)

        with ThreadPoolExecutor(n) as pool:
            if a.warmup > 0:
                list(pool.map(lambda k: one(k, a.warmup), range(n)))
                group.drain()
            rs = list(pool.map(lambda k: one(k, a.duration), range(n)))
        group.drain()
        r = {
            "rps": sum(x["rps"] for x in rs),
            "p99_ms": max(x["p99_ms"] for x in rs),
            "socket_errors": sum(x["socket_errors"] for x in rs),
            "non2xx": sum(x["non2xx"] for x in rs),
            "spread": [a.connections // n] * n,
        }
        self.log(f"{group.name:<24} {sc.name:<6} {r['rps']:>8,.0f} req/s  p99 {r['p99_ms']:.1f} ms")
        return r

    def phase(
        self, servers: list[tuple[Server | Replicas, bool]], ids: list[str]
    ) -> dict[str, dict[str, Any]]:
        samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
        scenarios = self.scenarios(ids)
        # reads in interleaved rounds on the stored servers alone, then the creates' rounds
        order = [r for _ in range(self.args.rounds) for r in ("list", "get")] + ["create"] * self.args.rounds
        for req in order:
            for server, pinned in servers:
                r = self.measure(server, scenarios[req], pinned)
                samples.setdefault((server.name, req), []).append(r)
        out: dict[str, dict[str, Any]] = {}
        for (name, req), rs in samples.items():
            out.setdefault(name, {})[req] = {
                "rps": round(statistics.median(r["rps"] for r in rs), 1),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 2),
                "rps_range": [min(r["rps"] for r in rs), max(r["rps"] for r in rs)],
                "errors": sum(r["socket_errors"] + r["non2xx"] for r in rs),
                "spread": [r.get("spread") for r in rs],
            }
        return out

    def run(self) -> dict[str, Any]:
        self.seed = self.tmp / "token-seed.json"
        datafile.write_token_seed(self.seed)
        data = self.tmp / "file" / "sandbox.json"
        ids = datafile.write_tinydb_file(data, self.args.size)
        records = datafile.server_records(self.args.size)  # the same servers (a seeded generator)
        redis_dir = self.tmp / "redis"
        redis_dir.mkdir()
        rproc, url = start_redis(redis_dir, self.server_cpus)
        res: dict[str, Any] = {"generator": self.gen_version, "connections": self.args.connections}
        try:
            if self.args.phase in ("all", "stores"):
                load_redis(url, records)
                file_one = self.server("file store, 1 process", ["--data", str(data)], True)
                redis_one = self.server("redis, 1 process", ["--store", url], True)
                for s in (file_one, redis_one):
                    s.start()
                res["one_process"] = self.phase([(file_one, True), (redis_one, True)], ids)
                for s in (file_one, redis_one):
                    s.stop()
            if self.args.phase in ("all", "workers"):
                load_redis(url, records)
                os.sched_setaffinity(rproc.pid, os.sched_getaffinity(0) | (self.server_cpus or set()))
                one = self.server("redis, 1 process (unpinned)", ["--store", url], False)
                two = self.server("redis, 2 workers (unpinned)", ["--store", url], False, ("--workers", "2"))
                pair = Replicas(
                    "redis, 2 replicas (unpinned)",
                    [self.server(f"redis, replica {k}", ["--store", url], False) for k in (1, 2)],
                )
                for s in (one, two, pair):
                    s.start()
                res["two_processes"] = self.phase([(one, False), (two, False), (pair, False)], ids)
                for s in (one, two, pair):
                    s.stop()
        finally:
            rproc.kill()
            rproc.wait()
            shutil.rmtree(self.tmp, ignore_errors=True)
        res["wall_s"] = round(time.perf_counter() - self.t0, 1)
        return res


def render_md(res: dict[str, Any]) -> str:
    lines = [
        f"Generator: {res['generator']}, {res['connections']} connections; medians of interleaved rounds.",
        "",
        "| target | GET list req/s (p99) | GET one req/s (p99) | POST create req/s (p99) |",
        "|---|---|---|---|",
    ]
    for phase in ("one_process", "two_processes"):
        for name, reqs in res.get(phase, {}).items():
            cells = [f"{reqs[r]['rps']:,.0f} ({reqs[r]['p99_ms']:.1f} ms)" for r in REQUESTS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, reqs in res.get("two_processes", {}).items():
        if "workers" in name:
            seen = [s for r in REQUESTS for s in reqs[r]["spread"] if s]
            lines.append("")
            lines.append(
                f"{name}: connections per worker, mid-run: " + ", ".join("/".join(map(str, s)) for s in seen)
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 1.0, 0.5, 1
    res = StoresBench(args).run()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stores.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    md = render_md(res)
    (args.out / "stores.md").write_text(md, encoding="utf-8")
    print(md)
    print(f"wrote {args.out / 'stores.json'} and {args.out / 'stores.md'} ({res['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
