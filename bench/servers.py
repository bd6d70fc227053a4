"""Servers under test as child processes on free loopback ports: start, wait until ready, read
peak RSS, stop. Only processes started here are ever signalled (by their own pid)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def split_cpus(pin: bool = True) -> tuple[set[int] | None, set[int] | None]:
    """The server's CPU (the last one this process may use) and the load generator's (the
    others); None for both when pinning is off or there is one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(
    url: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 120.0,
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Server:
    """One server process. `probe` is a path answering quickly when the server is idle."""

    def __init__(
        self,
        name: str,
        cmd: list[str],
        port: int,
        probe: str,
        logdir: Path,
        env: dict[str, str] | None = None,
        cpus: set[int] | None = None,
    ) -> None:
        self.name, self.cmd, self.port, self.probe = name, cmd, port, probe
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = logdir / f"{name}.log"
        self.env = {**os.environ, **(env or {})}
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None

    def start(self, timeout: float = 300.0) -> float:
        """Start and wait for the first answer to `probe`; return the seconds that took."""
        cpus = self.cpus
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
            start_new_session=True,  # its own process group: `stop` reaches what it started (npx → node)
        )
        log.close()
        deadline = t0 + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                http(self.base + self.probe, timeout=5)
                break
            except OSError:
                if time.perf_counter() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{self.name} not ready after {timeout:.0f} s: {self.log_tail()}"
                    ) from None
                time.sleep(0.05)
        self.ready_s = time.perf_counter() - t0
        return self.ready_s

    def log_tail(self, n: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    # -- memory -----------------------------------------------------------------------------
    def _pids(self) -> list[int]:
        """The server process and its descendants (uvicorn's workers under `--workers N`)."""
        assert self.proc is not None
        pids, i = [self.proc.pid], 0
        while i < len(pids):
            with (
                contextlib.suppress(OSError),
                open(f"/proc/{pids[i]}/task/{pids[i]}/children", encoding="ascii") as fh,
            ):
                pids += [int(p) for p in fh.read().split()]
            i += 1
        return pids

    def _status(self) -> dict[str, int]:
        """VmHWM and VmRSS summed over the process tree (kB)."""
        out: dict[str, int] = {}
        for pid in self._pids():
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                    for line in fh:
                        key, _, value = line.partition(":")
                        if key in ("VmHWM", "VmRSS"):
                            out[key] = out.get(key, 0) + int(value.split()[0])
            except OSError:
                pass
        return out

    def reset_peak(self) -> bool:
        """Reset the kernel's peak-RSS mark (VmHWM), so the next reading covers one measurement."""
        try:
            for pid in self._pids():
                with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as fh:
                    fh.write("5")
            return True
        except OSError:
            return False

    def peak_rss_mib(self) -> float | None:
        """Peak RSS since start (or the last `reset_peak`): VmHWM, else psutil's current RSS."""
        st = self._status()
        if "VmHWM" in st:
            return round(st["VmHWM"] / 1024, 1)
        try:
            import psutil

            assert self.proc is not None
            return round(psutil.Process(self.proc.pid).memory_info().rss / 2**20, 1)
        except Exception:
            return None

    def drain(self, timeout: float = 600.0) -> float:
        """Wait until requests queued by a finished load run are served (one probe answered)."""
        t0 = time.perf_counter()
        with contextlib.suppress(OSError):
            http(self.base + self.probe, timeout=timeout)
        return time.perf_counter() - t0

    def stop(self) -> dict[str, Any]:
        if self.proc is None or self.proc.poll() is not None:
            return {}
        group = self.proc.pid  # the leader of its own session and group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # whatever of the group outlived its leader
        return {"returncode": self.proc.returncode}
