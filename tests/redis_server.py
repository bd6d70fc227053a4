"""A real `redis-server` for the tests of `--store redis://`: its own port and folder, AOF with
`appendfsync always` (an acknowledged write is on disk), no RDB snapshots."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.live import free_port

MISSING = (
    "REDIS TESTS NOT RUN: redis-server is not installed "
    "(as root: make system-tools, or apt-get install redis-server)"
)


class RedisServer:
    """One `redis-server` process; `restart` keeps its folder (and so its AOF)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, appendonly: bool = True) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip(MISSING)
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--save", "", "--daemonize", "no", "--logfile", str(self.folder / "redis.log")]
        args += ["--appendonly", "yes" if appendonly else "no", "--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.folder / "redis.log").read_text(errors="replace")) from None
                time.sleep(0.02)
        client.close()

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None:
            if kill:
                self.proc.kill()
            else:
                self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def restart(self, kill: bool = True) -> None:
        """Down (`kill -9` by default: nothing flushed at exit) and up again on the same folder."""
        self.stop(kill=kill)
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


def redis_server(folder: Path) -> Iterator[RedisServer]:
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)
