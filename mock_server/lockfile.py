"""One server per data file, and a data folder that can take writes, checked before anything
touches the store.

`serve` takes an exclusive `flock` on `.<file>.owner` beside the data file and keeps it for
its whole life (with `--workers N`, the parent holds it for its workers); the file holds the
holder's PID. The lock is the file's, not its path's: a symlink to a served file (or the
file through a symlinked folder) finds the same lock. A second `serve` on the same file
finds the lock taken and refuses at once, naming the file and that PID, before it opens the
store, mints or revokes a token, or empties the run directory. The kernel drops the lock when
the holder exits, however it exits (`kill -9` included), so a stale lock file never blocks a
restart.

`--workers` processes also hold a shared `flock` on `.<file>.workers` for their lives: should
their parent die alone (`kill -9`), the orphans keep serving the file, and a new `serve` finds
that lock held and refuses too, rather than start beside them.

This lock is not the store's `.<file>.lock`, which writers take around each transaction:
`flock` locks belong to an open file, so a process that took both on one file would block on
itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path


class DataFileBusy(Exception):
    """Another live process serves this data file."""


class DataFolderUnusable(Exception):
    """The data file's folder cannot be created or written to."""


def _itself(data: Path) -> Path:
    """The data file itself, whatever path names it: symlinks resolved, so a second path to
    the same file finds the same lock."""
    return Path(os.path.realpath(data))


def owner_path(data: Path) -> Path:
    real = _itself(data)
    return real.with_name(f".{real.name}.owner")


def workers_path(data: Path) -> Path:
    real = _itself(data)
    return real.with_name(f".{real.name}.workers")


def hold_as_worker(data: Path) -> int:
    """In a `--workers` process: a shared lock on `.<file>.workers`, held until the process
    ends (the descriptor is returned only to be kept open)."""
    fd = os.open(workers_path(data), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def _orphan_workers(data: Path) -> bool:
    """Whether `--workers` processes of an earlier server (their parent gone) still serve."""
    path = workers_path(data)
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases the probe's lock, if it got it
    return False


class DataLock:
    """The lifetime lock of one data file (see the module)."""

    def __init__(self, data: Path) -> None:
        self.data = Path(data)
        self.path = owner_path(self.data)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise `DataFileBusy` (naming the holder's PID) without waiting."""
        try:
            self.data.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DataFolderUnusable(f"{self.data}: cannot use its folder ({_reason(exc)})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise DataFileBusy(
                f"{self.data} is already served by another sandbox (pid {holder}); "
                "stop that one, or pass another --data"
            ) from None
        try:
            orphans = _orphan_workers(self.data)
        except OSError:
            orphans = False
        if orphans:
            holder = _holder(fd)
            os.close(fd)
            raise DataFileBusy(
                f"{self.data} is still served by the --workers processes of an earlier sandbox "
                f"(its parent, pid {holder}, is gone); stop them, or pass another --data"
            )
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the lock holds without the PID; a second server then names no PID
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with the last descriptor of this open file
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _holder(fd: int) -> str:
    """The PID the holder wrote; it writes it just after locking, so wait a moment for it."""
    deadline = time.monotonic() + 1.0
    while True:
        raw = os.pread(fd, 32, 0).strip()
        if raw.isdigit():
            return raw.decode()
        if time.monotonic() > deadline:
            return "unknown"
        time.sleep(0.02)


def check_writable(data: Path) -> None:
    """Refuse, with one line, a data folder where the store could not write: a file created,
    written, fsynced and removed there, and the data file and its journal opened for append
    when they exist. (`os.access` is not enough: root passes it on a read-only mount.)"""
    folder = data.parent
    probe = folder / f".{data.name}.{os.getpid()}.probe"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                probe.unlink()
        for path in (data, data.with_name(data.name + ".journal")):
            if path.exists():
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC))
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else str(folder)
        raise DataFolderUnusable(f"{data}: the sandbox cannot write to {where} ({_reason(exc)})") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _reason(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"{exc.strerror or exc}{f', {name}' if name else ''}"
