"""The listening sockets of `serve`, bound before the store is opened: a busy port fails here,
having changed nothing (uvicorn takes them as they are).

One process: one plain socket. `--workers N` on Linux: N sockets on the same address, each with
SO_REUSEPORT, worker k accepting from socket k alone (`supervisor.py`), so the kernel spreads
new connections over the workers by hash; from one shared socket, the worker that wakes first
takes every connection waiting, and a client opening its pool at once lands on one process.
Elsewhere (no SO_REUSEPORT with Linux's spreading) the workers share one socket, as before."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass

REUSEPORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
BACKLOG = 2048


class PortUnavailable(Exception):
    """The port is taken (or the address is not this machine's)."""


@dataclass
class Listening:
    """The sockets (one, or one per worker) and, with SO_REUSEPORT, the port's lock: kept open
    by `serve` for its whole life, so a restarted worker gets its socket (and what queued on it)
    back."""

    sockets: list[socket.socket]
    lock: socket.socket | None = None

    def close(self) -> None:
        for sock in [*self.sockets, *([self.lock] if self.lock else [])]:
            sock.close()


def listen(host: str, port: int, workers: int = 1) -> Listening:
    if workers > 1 and REUSEPORT:
        return _listen_each(host, port, workers)
    return Listening([_socket(host, port, reuseport=False)])


def _socket(host: str, port: int, reuseport: bool, listening: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listening:  # with SO_REUSEADDR, a bound socket alone does not keep others out
            sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise _unavailable(host, port, exc) from None
    sock.set_inheritable(True)
    return sock


def _listen_each(host: str, port: int, workers: int) -> Listening:
    """`workers` sockets with SO_REUSEPORT on host:port, behind the port's lock. The first is
    bound before the lock is taken (`--port 0` learns its port so), but listens only after: a
    bound socket is given no connection, so a second sandbox refused by the lock takes none."""
    first = _socket(host, port, reuseport=True, listening=False)
    port = first.getsockname()[1]
    try:
        held = Listening([first], _lock(host, port))
    except PortUnavailable:
        first.close()
        raise
    try:
        first.listen(BACKLOG)
        held.sockets += [_socket(host, port, reuseport=True) for _ in range(workers - 1)]
    except PortUnavailable:
        held.close()
        raise
    except OSError as exc:
        held.close()
        raise _unavailable(host, port, exc) from None
    return held


def _unavailable(host: str, port: int, exc: OSError) -> PortUnavailable:
    return PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def _lock(host: str, port: int) -> socket.socket:
    """The port's lock: an abstract Unix socket (Linux), scoped to the network namespace as ports
    are, released by the kernel when this process ends, no file left behind. SO_REUSEPORT lets a
    second `serve --workers` of the same user bind beside the first and take half its
    connections; a plain socket already conflicts with ours in the kernel, so only that case
    needs this lock. Keyed by the port alone, not host:port: with SO_REUSEPORT the kernel also
    lets 127.0.0.1:P bind beside 0.0.0.0:P (or [::]:P), and the more specific listener then takes
    every loopback connection meant for the first. Two `--workers` sandboxes on distinct
    addresses of one machine cannot share a port number (use two ports)."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0mock_server-port-{port}")
    except OSError:
        lock.close()
        raise PortUnavailable(
            f"cannot listen on {host}:{port}: another sandbox with --workers listens on port {port}"
        ) from None
    return lock
