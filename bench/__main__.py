"""`python -m bench`: the sandbox side by side with two baselines on its own uvicorn settings (the
ceiling: precomputed bytes; a minimal real handler) and two peers (Prism's and connexion's static
mocks), then the sandbox's cost as the stored servers grow. See bench/README.md."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import datafile, loadgen, report
from .baselines import capture
from .connexion_spec import add_bearer_info, write_openapi30
from .servers import ROOT, Server, free_port, http, split_cpus

SANDBOX_PROBE = "/_mock/health"
PROXY = "proxy → sandbox"
CEILING = "ceiling: precomputed bytes"
HANDLER = "minimal handler"
PRISM = "Prism static mock"
CONNEXION = "connexion --mock"
PRISM_PACKAGE = "@stoplight/prism-cli@5"
G_CEILING = "ceiling on Granian"
G_SANDBOX = "sandbox on Granian"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (default 5)")
    p.add_argument(
        "--rounds", type=int, default=None, help="interleaved rounds of the side-by-side runs (default 3)"
    )
    p.add_argument("--warmup", type=float, default=1.0, help="unrecorded seconds before each (default 1)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 s measurements, sizes 1000,10000")
    p.add_argument("--sizes", default="1000,10000,100000", help="stored servers for the scaling series")
    p.add_argument(
        "--seed-counts", default="100,300", help="servers loaded through --seed, timed ('' = skip)"
    )
    p.add_argument("--connections", default="32,1", help="connection counts of the side-by-side runs")
    p.add_argument("--rate-window", default="0.001", help="sandbox --rate-window: 100 per this many s")
    p.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and generator to separate CPUs")
    p.add_argument(
        "--workers", type=int, default=2, help="also measure `serve --workers N` (default 2; 1 = skip)"
    )
    p.add_argument("--skip-scaling", action="store_true")
    p.add_argument("--no-prism", action="store_true", help="do not fetch and measure Prism (npx)")
    p.add_argument("--no-granian", action="store_true", help="do not measure the apps on Granian")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return p


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.kind, self.gen_version = loadgen.detect(args.generator)
        self.tmp = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
        cpus = sorted(os.sched_getaffinity(0))
        self.server_cpus, self.gen_cpus = split_cpus(not args.no_pin)
        self.pin = self.server_cpus is not None
        if self.gen_cpus:
            os.sched_setaffinity(0, self.gen_cpus)
        self.t0 = time.perf_counter()
        self.headers = {"Authorization": f"Bearer {datafile.TOKEN}"}
        self.fresh: dict[str, Path] = {}  # sandbox target -> its data file (a .pristine copy beside it)
        self.res: dict[str, Any] = {
            "meta": {
                "command": " ".join(["python -m bench", *sys.argv[1:]]),
                "started": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": len(cpus),
                "pinning": self.pin,
                "server_cpus": sorted(self.server_cpus or []),
                "generator_cpus": sorted(self.gen_cpus or []),
                "generator": self.gen_version,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
                "rate_window": args.rate_window,
                "versions": _versions(),
            },
            "servers": {},
            "measurements": [],
            "scaling": [],
            "seed_path": [],
            "goals": [],
            "notes": [],
        }

    # -- helpers -------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    def note(self, msg: str) -> None:
        self.res["notes"].append(msg)
        self.log("note: " + msg)

    def sandbox(self, name: str, data: Path, extra: list[str], seed: Path | None = None) -> Server:
        port = free_port()
        cmd = [
            sys.executable,
            "-m",
            "mock_server",
            "serve",
            "--api",
            datafile.API,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data",
            str(data),
            *extra,
        ]
        cmd += ["--seed", str(seed or self.token_seed)]
        return Server(name, cmd, port, SANDBOX_PROBE, self.tmp, cpus=self.server_cpus)

    def scenarios(self, base: str, ids: list[str]) -> dict[str, loadgen.Scenario]:
        step = max(1, len(ids) // 100)
        sample = ids[::step][:100] or ["srv_missing"]
        body = json.dumps(datafile.CREATE_BODY).encode()
        return {
            "list": loadgen.Scenario("list", "GET", [f"{base}/servers"], dict(self.headers)),
            "filtered": loadgen.Scenario(
                "filtered", "GET", [f"{base}/servers?status=active"], dict(self.headers)
            ),
            "get": loadgen.Scenario(
                "get", "GET", [f"{base}/servers/{i}" for i in sample], dict(self.headers)
            ),
            "create": loadgen.Scenario(
                "create",
                "POST",
                [f"{base}/servers"],
                {**self.headers, "Content-Type": "application/json"},
                body,
            ),
        }

    def measure(self, server: Server, sc: loadgen.Scenario, conns: int) -> dict[str, Any]:
        a = self.args
        if a.warmup > 0:
            loadgen.run(self.kind, server.base, sc, conns, a.warmup, self.tmp, self.gen_cpus)
            server.drain()
        server.reset_peak()
        r = loadgen.run(self.kind, server.base, sc, conns, a.duration, self.tmp, self.gen_cpus)
        r["peak_rss_mib"] = server.peak_rss_mib()
        r["loadavg_1m"] = round(os.getloadavg()[0], 2)
        drain = server.drain()
        if drain > 0.5:
            r["drain_s"] = round(drain, 2)
        self.log(
            f"{server.name:<22} {sc.name:<6} c={conns:<3} {r['rps']:>9,.1f} req/s  p50 {r['p50_ms']:.2f} ms  "
            f"p99 {r['p99_ms']:.2f} ms  errors {r['socket_errors'] + r['non2xx']}"
        )
        return r

    # -- phases --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        a = self.args
        self.log(f"generator: {self.gen_version}; temp dir {self.tmp}")
        self.token_seed = self.tmp / "token-seed.json"
        datafile.write_token_seed(self.token_seed)
        conns = [int(c) for c in a.connections.split(",") if c]
        self.res["meta"]["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
        try:
            self.phase_side_by_side(conns)
            if a.seed_counts:
                self.phase_seed_path([int(n) for n in a.seed_counts.split(",") if n])
            if not a.skip_scaling:
                self.phase_scaling([int(n) for n in a.sizes.split(",") if n])
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.res["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        self.ratios()
        self.goals()
        self.res["meta"]["wall_s"] = round(time.perf_counter() - self.t0, 1)
        return self.res

    def start_side_by_side(self) -> dict[str, tuple[Server, dict[str, loadgen.Scenario]]]:
        """Every server, started once and left idle between its measurements."""
        base = datafile.BASE_PATH
        out: dict[str, tuple[Server, dict[str, loadgen.Scenario]]] = {}
        srv, ids = self._fresh_sandbox("sandbox", ["--rate-window", self.args.rate_window])
        out["sandbox"] = (srv, self.scenarios(base, ids))
        bodies = self._capture(srv, ids)

        # the validating proxy in front of that sandbox, on the same server CPU (its price, not scale-out)
        port = free_port()
        upstream = srv.base + base
        cmd = [sys.executable, "-m", "proxy", "--api", datafile.API, "--upstream", upstream,
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
        proxy = Server("proxy", cmd, port, "/_mock/proxy", self.tmp, cpus=self.server_cpus)
        proxy.start()
        out[PROXY] = (proxy, self.scenarios(base, ids))
        self.res["servers"][PROXY] = cmd[1:]
        status, _, via = http(proxy.base + base + "/servers", headers=self.headers)
        self.res["meta"]["proxy_same_body"] = status == 200 and via == bodies["list"]
        if via != bodies["list"]:
            self.note(
                f"the proxy's body differs from the sandbox's ({len(via)} vs {len(bodies['list'])} bytes)"
            )

        srv, ids = self._fresh_sandbox("sandbox, no rate limit", ["--no-rate-limit"])
        out["sandbox, no rate limit"] = (srv, self.scenarios(base, ids))
        if self.args.workers > 1:  # on the same server CPU(s): the price of sharing, not scale-out
            extra = ["--rate-window", self.args.rate_window, "--workers", str(self.args.workers)]
            srv, ids = self._fresh_sandbox(f"sandbox, {self.args.workers} workers", extra)
            out[f"sandbox, {self.args.workers} workers"] = (srv, self.scenarios(base, ids))

        body_dir = self.tmp / "bodies"
        body_dir.mkdir()
        for kind, data in bodies.items():
            (body_dir / f"{kind}.json").write_bytes(data)
        sample = ids[:1]  # a baseline answers the same document for any id
        for target, mode in ((CEILING, "ceiling"), (HANDLER, "handler")):
            port = free_port()
            cmd = [sys.executable, "-m", "bench.baselines", "--mode", mode, "--port", str(port),
                   "--bodies", str(body_dir), "--base", base]  # fmt: skip
            srv = Server(mode, cmd, port, base + "/servers", self.tmp,
                         env={"BENCH_TOKEN": datafile.TOKEN}, cpus=self.server_cpus)  # fmt: skip
            srv.start()
            out[target] = (srv, self.scenarios(base, sample))
            self.res["servers"][target] = cmd[1:]
            for kind, sc in out[target][1].items():
                if kind == "filtered":
                    continue
                st, _, got = http(srv.base + sc.paths[0], sc.method, sc.headers, sc.body)
                same = got == bodies[kind]
                self.res["meta"].setdefault("baseline_same_bytes", {})[f"{mode} {kind}"] = same
                if not same:
                    self.note(f"{mode}'s {kind} answer differs from the sandbox's ({st}, {len(got)} bytes)")
        for target, server in self._start_granian(body_dir, sample).items():
            out[target] = server
        prism = self._start_prism(base, sample)
        if prism is not None:
            out[PRISM] = prism
        connexion = self._start_connexion()
        if connexion is not None:
            out[CONNEXION] = connexion
        return out

    def _fresh_sandbox(self, target: str, extra: list[str]) -> tuple[Server, list[str]]:
        """A sandbox on its own copy of the 1,000-server file (a `.pristine` copy beside it
        restores it before each create run)."""
        slug = target.replace(",", "").replace(" ", "-")
        data = self.tmp / f"{slug}.json"
        ids = datafile.write_tinydb_file(data, 1000)
        shutil.copyfile(data, data.with_suffix(".pristine"))
        srv = self.sandbox(slug, data, extra)
        self.fresh[target] = data
        self.log(f"{target} (1,000 servers) ready in {srv.start():.2f} s")
        self.res["servers"][target] = srv.cmd[1:]
        return srv, ids

    def _restart_fresh(self, target: str, srv: Server) -> None:
        srv.stop()
        data = self.fresh[target]
        shutil.copyfile(data.with_suffix(".pristine"), data)
        srv.start()

    def _capture(self, srv: Server, ids: list[str]) -> dict[str, bytes]:
        """The sandbox's own answers, which the baselines then serve (`baselines.capture`); the
        sandbox then restarts on its pristine file."""
        bodies, headers = capture(srv.base + datafile.BASE_PATH, ids[0], datafile.TOKEN)
        if json.loads(bodies["list"]).get("meta", {}).get("total") != 1000:
            raise RuntimeError(f"sandbox list: {bodies['list'][:300]!r}")
        self.res["meta"]["sandbox_list_bytes"] = len(bodies["list"])
        rate = {k: v for k, v in headers.items() if k.lower().startswith(("ratelimit", "x-ratelimit"))}
        self.res["meta"]["sandbox_rate_headers"] = rate
        if not rate:
            self.note("the sandbox sent no RateLimit headers: rate limiting is not in the measured path")
        self._restart_fresh("sandbox", srv)
        return bodies

    def _start_granian(
        self, body_dir: Path, sample: list[str]
    ) -> dict[str, tuple[Server, dict[str, loadgen.Scenario]]]:
        """The ceiling and the sandbox on Granian (a Rust HTTP server), when it is installed: what
        the server, rather than the app, costs. Skipped with a note otherwise."""
        if self.args.no_granian:
            return {}
        if importlib.util.find_spec("granian") is None:
            self.note("Granian not measured: it is not installed (pip install granian)")
            return {}
        base, out = datafile.BASE_PATH, {}
        for target, factory, probe in (
            (G_CEILING, "ceiling", base + "/servers"),
            (G_SANDBOX, "sandbox", SANDBOX_PROBE),
        ):
            # Granian hands requests to Python in bursts: 20 writes fell inside 1 ms (429s seen)
            window = str(min(float(self.args.rate_window), 0.0001))
            env = {"BENCH_BODIES": str(body_dir), "BENCH_RATE_WINDOW": window}
            ids = sample
            if factory == "sandbox":
                data = self.tmp / "granian-sandbox.json"
                ids = datafile.write_tinydb_file(data, 1000)
                shutil.copyfile(data, data.with_suffix(".pristine"))
                self.fresh[target] = data
                env |= {"BENCH_DATA": str(data), "BENCH_SEED": str(self.token_seed)}
            port = free_port()
            cmd = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", "1", "--runtime-mode", "st", "--loop", "uvloop",
                   "--no-ws", "--log-level", "warning", "--no-access-log",
                   f"bench.granian_apps:{factory}"]  # fmt: skip
            srv = Server(f"granian-{factory}", cmd, port, probe, self.tmp, env=env, cpus=self.server_cpus)
            try:
                srv.start()
            except RuntimeError as exc:
                self.note(f"{target} not measured: {str(exc)[:200]}")
                continue
            out[target] = (srv, self.scenarios(base, ids))
            self.res["servers"][target] = cmd[1:]
        return out

    def _start_prism(self, base: str, sample: list[str]) -> tuple[Server, dict[str, loadgen.Scenario]] | None:
        """Prism's static mock of the same spec, fetched by `npx` (skipped with a note when npx
        is missing or Prism cannot start)."""
        if self.args.no_prism:
            return None
        npx = shutil.which("npx")
        if npx is None:
            self.note("Prism not measured: npx (Node.js) is not installed")
            return None
        port = free_port()
        # `--verboseLevel error`: no line per request (Prism logs each at `info`), as every server here
        cmd = [npx, "--yes", PRISM_PACKAGE, "mock", "-h", "127.0.0.1", "-p", str(port),
               "--verboseLevel", "error", str(ROOT / "specs" / f"{datafile.API}.yaml")]  # fmt: skip
        srv = Server("prism", cmd, port, base + "/servers", self.tmp, cpus=self.server_cpus)
        try:
            srv.start(timeout=240)
        except RuntimeError as exc:
            self.note(f"Prism not measured: it did not start ({str(exc)[:200]})")
            return None
        # Prism serves the spec's paths from its servers' URL path: probe which answers
        for prefix in (base, "/api/v1", ""):
            st, _, _ = http(srv.base + prefix + "/servers", headers=self.headers)
            if 200 <= st < 300:
                break
        sc = self.scenarios(prefix, sample)
        for name, s in sc.items():
            st, _, _ = http(srv.base + s.paths[0], s.method, s.headers, s.body)
            if not 200 <= st < 300:
                self.note(f"Prism answers {st} to {name} {s.method} {s.paths[0]}")
        self.res["servers"][PRISM] = [PRISM_PACKAGE, *cmd[3:]]
        return srv, sc

    def _start_connexion(self) -> tuple[Server, dict[str, loadgen.Scenario]] | None:
        spec30 = self.tmp / "nurosentrix-openapi-3.0.yaml"
        add_bearer_info(write_openapi30(ROOT / "specs" / "nurosentrix.yaml", spec30))
        self.note(
            "connexion 3 refuses OpenAPI 3.1 ('3.1.0' does not match '^3\\.0\\.\\d(-.+)?$'), so "
            "the connexion peer serves a mechanical 3.0.3 copy of specs/nurosentrix.yaml (type lists → "
            "nullable, const → enum, schema examples → example) with `x-bearerInfoFunc` accepting any "
            "bearer token: without one, connexion answers 401 to every request"
        )
        port = free_port()
        cx_base = "/api/v1"  # connexion mounts the path of the spec's server URL
        cmd = [sys.executable, "-m", "uvicorn", "bench.connexion_app:app", "--app-dir", str(ROOT),
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
        srv = Server("connexion", cmd, port, cx_base + "/servers", self.tmp,
                     env={"BENCH_CONNEXION_SPEC": str(spec30)}, cpus=self.server_cpus)  # fmt: skip
        try:
            srv.start()
        except RuntimeError as exc:
            self.note(f"connexion --mock=all could not be served: {exc}")
            return None
        sc = self.scenarios(cx_base, ["srv_abc123"])
        for s in sc.values():
            st, _, _ = http(srv.base + s.paths[0], s.method, s.headers, s.body)
            if not 200 <= st < 300:
                self.note(f"connexion answers {st} to {s.method} {s.paths[0]}")
        self.res["servers"][CONNEXION] = [*cmd[1:], f"(BENCH_CONNEXION_SPEC={spec30.name})"]
        return srv, sc

    def phase_side_by_side(self, conns: list[int]) -> None:
        """Interleaved rounds: every (server, request, connections) once per round, reads first
        (creates add servers, and a created server left `provisioning` makes later lists write).
        Each figure is the median over the rounds, so a burst of outside load moves one sample."""
        servers = self.start_side_by_side()
        targets = ("sandbox", PROXY, "sandbox, no rate limit", f"sandbox, {self.args.workers} workers",
                   CEILING, HANDLER, G_SANDBOX, G_CEILING, PRISM, CONNEXION)  # fmt: skip
        try:
            batches: list[list[tuple[str, str, int]]] = []
            for kinds in (("list", "get"), ("create",)):
                batch = []
                for target in targets:
                    if target not in servers:
                        continue
                    for name in kinds:
                        if target == PROXY and name == "create":
                            continue  # its creates would grow the sandbox's data under the others
                        nrl_read = target == "sandbox, no rate limit" and name != "create"
                        for c in conns[:1] if nrl_read else conns:
                            batch.append((target, name, c))
                batches.append(batch)
            samples: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
            for batch in batches:
                for rnd in range(self.args.rounds):
                    shift = (rnd * len(batch)) // self.args.rounds  # rotate: no fixed position in a round
                    for target, name, c in batch[shift:] + batch[:shift]:
                        srv, sc = servers[target]
                        if name == "create" and target in self.fresh:
                            # every create run starts from the same 1,000 servers (each run adds some)
                            self._restart_fresh(target, srv)
                        r = self.measure(srv, sc[name], c)
                        r["round"] = rnd + 1
                        samples.setdefault((target, name, c), []).append(r)
            reqs = ["list", "get", "create"]
            for (target, name, c), rs in sorted(
                samples.items(), key=lambda kv: (targets.index(kv[0][0]), reqs.index(kv[0][1]), -kv[0][2])
            ):
                self.res["measurements"].append(
                    {"target": target, "request": _label(name), "connections": c, **_median(rs)}
                )
        finally:
            for srv, _ in servers.values():
                srv.stop()

    def phase_seed_path(self, counts: list[int]) -> None:
        for n in counts:
            seed = self.tmp / f"seed-{n}.json"
            datafile.write_full_seed(seed, n)
            srv = self.sandbox(
                f"sandbox-seed-{n}", self.tmp / f"seeded-{n}.json", ["--rate-window", "0.001"], seed
            )
            ready = srv.start(timeout=900)
            srv.stop()
            self.res["seed_path"].append({"servers": n, "ready_s": round(ready, 2)})
            self.log(f"--seed with {n} servers: ready after {ready:.2f} s")

    def phase_scaling(self, sizes: list[int]) -> None:
        base = datafile.BASE_PATH
        for n in sizes:
            data = self.tmp / f"scale-{n}.json"
            t = time.perf_counter()
            ids = datafile.write_tinydb_file(data, n)
            gen_s = time.perf_counter() - t
            size_mb = data.stat().st_size / 2**20
            srv = self.sandbox(f"sandbox-{n}", data, ["--rate-window", self.args.rate_window])
            start_s = srv.start(timeout=900)
            self.log(
                f"sandbox with {n:,} servers ({size_mb:.1f} MB, written in {gen_s:.2f} s) "
                f"ready in {start_s:.2f} s"
            )
            try:
                st, _, body = http(srv.base + base + "/servers?per_page=1", headers=self.headers)
                total = json.loads(body).get("meta", {}).get("total")
                if st != 200 or total != n:
                    raise RuntimeError(f"sandbox with {n} servers lists {total} ({st})")
                sc = self.scenarios(base, ids)
                for name in ("list", "filtered", "get", "create"):
                    one = self.measure(srv, sc[name], 1)
                    rows = [(1, one)]
                    if one["p50_ms"] < 50:
                        rows.append((32, self.measure(srv, sc[name], 32)))
                    for c, r in rows:
                        self.res["scaling"].append(
                            {
                                "stored": n,
                                "file_mb": round(size_mb, 1),
                                "start_s": round(start_s, 2),
                                "request": _label(name),
                                "connections": c,
                                **r,
                            }
                        )
            finally:
                srv.stop()
        self.res["notes"].append(
            "Scaling series: every size runs at 1 connection (the cost of one request alone); a "
            "32-connection run follows only when one request takes under 50 ms alone — beyond that a "
            "closed loop of 32 measures queueing (req/s ≈ 1/p50, p99 ≈ 32 × p50) and leaves a backlog."
        )

    # -- derived -------------------------------------------------------------------------------
    def _find(self, target: str, request: str, conns: int) -> dict[str, Any] | None:
        return next(
            (
                m
                for m in self.res["measurements"]
                if m["target"] == target and m["request"] == request and m["connections"] == conns
            ),
            None,
        )

    def ratios(self) -> None:
        """Each row's req/s ÷ the ceiling's and ÷ the minimal handler's, same request and
        connections."""
        for m in self.res["measurements"]:
            for key, base in (("ratio_vs_ceiling", CEILING), ("ratio_vs_handler", HANDLER)):
                b = self._find(base, m["request"], m["connections"])
                m[key] = round(m["rps"] / b["rps"], 4) if b and b["rps"] else None

    def goals(self) -> None:
        g = self.res["goals"]
        for name, share in (("list", 0.5), ("get", 0.5), ("create", 0.3)):
            s, top = self._find("sandbox", _label(name), 32), self._find(CEILING, _label(name), 32)
            if s and top:
                ratio = s["rps"] / top["rps"]
                g.append(
                    {
                        "goal": f"{_label(name)} req/s ≥ {share:g}× the ceiling (32 conns, all enforcement)",
                        "measured": f"{ratio:.2f}× ({s['rps']:,.0f} / {top['rps']:,.0f})",
                        "target": f"≥ {share:g}×",
                        "met": ratio >= share,
                    }
                )
            for peer in (PRISM, CONNEXION):
                b = self._find(peer, _label(name), 32)
                if s and b:
                    g.append(
                        {
                            "goal": f"{_label(name)} req/s > {peer} (32 conns)",
                            "measured": f"{s['rps']:,.0f} vs {b['rps']:,.0f} ({s['rps'] / b['rps']:.2f}×)",
                            "target": "> 1×",
                            "met": s["rps"] > b["rps"],
                        }
                    )
        for name in ("list", "get", "create"):
            s, top = self._find(G_SANDBOX, _label(name), 32), self._find(G_CEILING, _label(name), 32)
            if s and top:
                g.append(
                    {
                        "goal": f"on Granian: {_label(name)} req/s ÷ the ceiling on Granian (32 conns)",
                        "measured": f"{s['rps'] / top['rps']:.2f}× ({s['rps']:,.0f} / {top['rps']:,.0f})",
                        "target": "(no goal)",
                        "met": None,
                    }
                )
        for name in ("list", "get"):
            direct, via = self._find("sandbox", _label(name), 1), self._find(PROXY, _label(name), 1)
            if direct and via:
                g.append(
                    {
                        "goal": f"proxy: p50 added per {_label(name)} (1 conn)",
                        "measured": f"{via['p50_ms'] - direct['p50_ms']:+.2f} ms "
                        f"({direct['p50_ms']:.2f} → {via['p50_ms']:.2f} ms)",
                        "target": "(no goal)",
                        "met": None,
                    }
                )
            direct, via = self._find("sandbox", _label(name), 32), self._find(PROXY, _label(name), 32)
            if direct and via and direct["rps"]:
                g.append(
                    {
                        "goal": f"proxy: {_label(name)} req/s through the proxy ÷ direct (32 conns)",
                        "measured": f"{via['rps'] / direct['rps'] * 100:.1f}% "
                        f"({via['rps']:,.0f} / {direct['rps']:,.0f})",
                        "target": "(no goal)",
                        "met": None,
                    }
                )
        for name, limit in (("list", 10.0), ("get", 10.0), ("create", 15.0)):
            for target in ("sandbox", "sandbox, no rate limit"):
                s = self._find(target, _label(name), 32)
                if s:
                    g.append(
                        {
                            "goal": f"{target}: {_label(name)} p99 (32 conns)",
                            "measured": f"{s['p99_ms']:.2f} ms",
                            "target": f"< {limit:g} ms",
                            "met": s["p99_ms"] < limit,
                        }
                    )
        for name in ("get", "create", "list", "filtered"):
            rows = [m for m in self.res["scaling"] if m["request"] == _label(name) and m["connections"] == 1]
            if len(rows) >= 2:
                lo, hi = rows[0], rows[-1]
                growth = hi["p50_ms"] / lo["p50_ms"] if lo["p50_ms"] else float("inf")
                g.append(
                    {
                        "goal": f"{_label(name)} p50 flat {lo['stored']:,} → {hi['stored']:,} stored "
                        "(1 conn)",
                        "measured": f"{lo['p50_ms']:.2f} → {hi['p50_ms']:.2f} ms ({growth:.1f}×)",
                        "target": "≤ 2×",
                        "met": growth <= 2.0,
                    }
                )


def _median(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from several rounds: medians of rates and percentiles, worst max and memory."""
    out: dict[str, Any] = {}
    for key in ("rps", "p50_ms", "p90_ms", "p99_ms", "mean_ms"):
        out[key] = round(statistics.median(r[key] for r in rs), 3)
    out["max_ms"] = max(r["max_ms"] for r in rs)
    out["rps_min"] = min(r["rps"] for r in rs)
    out["rps_max"] = max(r["rps"] for r in rs)
    for key in ("requests", "socket_errors", "non2xx"):
        out[key] = sum(r[key] for r in rs)
    peaks = [r["peak_rss_mib"] for r in rs if r["peak_rss_mib"] is not None]
    out["peak_rss_mib"] = max(peaks) if peaks else None
    out["samples"] = rs
    return out


def _label(name: str) -> str:
    return {
        "list": "GET /servers",
        "filtered": "GET /servers?status=active",
        "get": "GET /servers/{id}",
        "create": "POST /servers",
    }[name]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("starlette", "uvicorn", "connexion", "tinydb", "jsonschema", "uvloop", "httptools"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stores"]:  # the file store against Redis: bench/stores.py
        from . import stores

        return stores.main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.quick:
        args.duration, args.warmup = min(args.duration, 1.0), min(args.warmup, 1.0)
        args.rounds = args.rounds or 1
        if args.sizes == "1000,10000,100000":
            args.sizes = "1000,10000"
        if args.seed_counts == "100,300":
            args.seed_counts = "50"
    args.rounds = args.rounds or 3
    bench = Bench(args)
    res = bench.run()
    rw = args.rate_window
    res["notes"][:0] = [
        f"Rate limiting: the specs allow 100 requests (20 writes) per 60 s per token and no sandbox option "
        f"raises a limit, so `--rate-window {rw}` keeps the limiter in the path (moving-window log, "
        f"headers on every answer) with 100 per {rw} s — far above anything one process serves. "
        "`sandbox, no rate limit` is the same with `--no-rate-limit` (the brief's way to measure POST).",
        f"Side by side: all four servers run at once (idle but for the one measured) and every figure "
        f"is the median of {args.rounds} interleaved round(s); `req/s range` is the spread over the rounds. "
        "Before each create run the sandbox restarts on a fresh copy of its 1,000-server file. "
        "Other processes share this 2-core machine (load average in latest.json, per sample).",
        "÷ ceiling / ÷ handler: each row's req/s divided by the ceiling's (Starlette answering the sandbox's "
        "own bytes, precomputed) and the minimal handler's (token dict lookup, the same document encoded per "
        "request with the sandbox's encoder) for the same request and connections; both baselines run on the "
        "sandbox's own uvicorn settings (`httpguard.server_config`).",
        "Peak RSS: VmHWM summed over the server's process tree (every worker), reset (/proc/PID/clear_refs) "
        "before each measurement.",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(
        json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (args.out / "latest.md").write_text(report.render_md(res), encoding="utf-8")
    print(report.render_text(res))
    print(f"\nwrote {args.out / 'latest.json'} and {args.out / 'latest.md'} ({res['meta']['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
