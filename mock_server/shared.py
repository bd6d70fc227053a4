"""What `serve --workers N` processes must agree on besides the store: the clock's offset, the
rate-limit logs and the request log. Each lives in a run directory beside the data file that
the parent process empties at start (none of it outlives a run, as in one process).

- the clock offset: 8 bytes in a memory-mapped file (a read is a memory load; `advance` takes
  a file lock for its read-modify-write);
- rate-limit logs and the request log: SQLite (the standard library's), WAL, no fsync; a
  decision is one `BEGIN IMMEDIATE` transaction, so limits are exact across processes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import mmap
import os
import sqlite3
import struct
import threading
import time
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .bodies import as_text
from .clock import Clock
from .ratelimit import Bucket, Decision, RateLimiter

_OFFSET = struct.Struct("d")
_log = logging.getLogger(__name__)
_warned: dict[str, float] = {}


def _degraded(what: str, exc: Exception) -> None:
    """Log, at most once a minute per `what`, that shared run state could not be written."""
    now = time.monotonic()
    if now - _warned.get(what, -60.0) >= 60.0:
        _warned[what] = now
        _log.warning("%s: cannot write the shared run state (%s); carrying on without it", what, exc)


def prepare_run_dir(path: Path) -> Path:
    """Create (or empty) the run directory of a multi-process server."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.iterdir():
        if stale.is_file():
            stale.unlink()
    return path


class SharedClock(Clock):
    """Wall time plus an offset that every process maps from one file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size < _OFFSET.size:
            os.ftruncate(self._fd, _OFFSET.size)
        self._map = mmap.mmap(self._fd, _OFFSET.size)

    def now(self) -> float:
        return time.time() + _OFFSET.unpack_from(self._map)[0]

    def advance(self, seconds: float) -> float:
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                _OFFSET.pack_into(self._map, 0, _OFFSET.unpack_from(self._map)[0] + seconds)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        return self.now()


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
    # Switching to WAL needs the database alone: workers starting at once may find it locked
    # (SQLite's busy handler does not cover this); WAL then persists, so a retry soon succeeds.
    for _ in range(200):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(0.05)
    db.execute("PRAGMA synchronous=OFF")  # run state: nothing here must survive a crash
    return db


class SharedRateLimiter(RateLimiter):
    """The moving-window limiter with its logs in SQLite, one row per (caller, bucket)."""

    def __init__(
        self, path: Path, clock: Clock, window_override: float | None = None, enabled: bool = True
    ) -> None:
        super().__init__(clock, window_override, enabled)
        self._db = _connect(path)
        # `until`: when the row's last entry leaves its window (the sweep deletes rows past it)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS logs (key TEXT PRIMARY KEY, times BLOB NOT NULL, until REAL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS logs_until ON logs (until)")

    def hit(self, key: str, buckets: Sequence[Bucket]) -> Decision | None:
        """As in one process; should SQLite fail (its folder's disk is full), the request is
        admitted without a decision (no rate-limit headers) rather than refused with a 500."""
        try:
            return super().hit(key, buckets)
        except sqlite3.Error as exc:
            _degraded("rate limits", exc)
            return None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            try:
                yield
            except BaseException:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error:
                with suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                raise

    def _logs(self, key: str, buckets: Sequence[Bucket]) -> list[deque[float]]:
        logs = []
        for b in buckets:
            row = self._db.execute("SELECT times FROM logs WHERE key = ?", (f"{key}\0{b.name}",)).fetchone()
            logs.append(deque(array("d", row[0])) if row else deque())
        return logs

    def _save(self, key: str, buckets: Sequence[Bucket], logs: list[deque[float]]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO logs (key, times, until) VALUES (?, ?, ?)",
            [
                (f"{key}\0{b.name}", array("d", log).tobytes(), (log[-1] if log else 0.0) + b.window)
                for b, log in zip(buckets, logs, strict=True)
            ],
        )

    def reset(self, key_prefix: str = "") -> None:
        """Delete the rows whose key starts with `key_prefix`: a range of keys, compared as
        bytes (SQLite's text functions such as `substr` stop at the NUL inside a key, so a
        `substr` match deleted nothing)."""
        with self._locked():
            if not key_prefix:
                self._db.execute("DELETE FROM logs")
                return
            upper = key_prefix[:-1] + chr(ord(key_prefix[-1]) + 1)
            self._db.execute("DELETE FROM logs WHERE key >= ? AND key < ?", (key_prefix, upper))

    def forget(self, key: str) -> None:
        with suppress(sqlite3.Error):
            self.reset(key + "\0")

    def _sweep(self, now: float) -> None:
        """Delete the rows of callers idle for a whole window (inside `hit`'s transaction), as
        one process drops their logs from memory."""
        self._since_sweep, self._swept_at = 0, now
        self._db.execute("DELETE FROM logs WHERE until <= ?", (now,))

    def rows(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM logs").fetchone()[0])


class RequestLog:
    """The last `size` requests the sandbox answered (`GET /_mock/requests`)."""

    def __init__(self, size: int) -> None:
        self._rows: deque[dict[str, Any]] = deque(maxlen=size)

    def append(self, entry: dict[str, Any]) -> None:
        self._rows.append(entry)

    def clear(self) -> None:
        self._rows.clear()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._rows))


class SharedRequestLog(RequestLog):
    """The request log of every worker, in order of answer, in SQLite."""

    TRIM_EVERY = 100

    def __init__(self, path: Path, size: int) -> None:
        super().__init__(size)
        self.size = size
        self._lock = threading.Lock()
        self._db = _connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS requests (n INTEGER PRIMARY KEY, entry TEXT NOT NULL)")

    def append(self, entry: dict[str, Any]) -> None:
        with self._lock:
            try:
                row = (json.dumps(entry, default=as_text),)
                n = self._db.execute("INSERT INTO requests (entry) VALUES (?)", row).lastrowid
                if n is not None and n % self.TRIM_EVERY == 0:
                    self._db.execute("DELETE FROM requests WHERE n <= ?", (n - self.size,))
            except sqlite3.Error as exc:  # a full disk: the log misses this request, the request goes on
                _degraded("the request log", exc)

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM requests")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT entry FROM (SELECT n, entry FROM requests ORDER BY n DESC LIMIT ?) ORDER BY n",
                (self.size,),
            ).fetchall()
        return (json.loads(r[0]) for r in rows)
