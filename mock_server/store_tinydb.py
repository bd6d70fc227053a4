"""The default store: TinyDB's JSON file format, held in memory, made durable by a journal.

Measured traps (`../shared/TRAPS.md`): TinyDB's `JSONStorage` rewrites the file in place (a
`kill -9` mid-write leaves it unreadable), and every TinyDB table operation reads, rebuilds
and rewrites the whole file, so a write at 100k records costs ~800 ms. Here the tables live in
memory (`Store`), each acknowledged write is first appended to `<file>.journal` and fsynced
(one short line: the cost does not grow with the data; with `group_commit` the line goes to the
OS at once and `sync()` fsyncs once for all writes made so far), and the journal is compacted into the
TinyDB file — written atomically: temp file, fsync, rename, fsync dir — once it holds as many
entries as it had records (so the amortised cost per write stays flat), at start and at a
clean shutdown (`background_compaction` moves the rewrite to a thread, see `_compact_behind`);
`shared=True` lets several processes keep one state in the file (see the
class). After a clean shutdown the file alone is a plain TinyDB database
(`{table: {doc_id: record}}`), readable by `tinydb.TinyDB`; after a crash, start-up replays
the journal (a torn last line, the one write that was never acknowledged, is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from tinydb.storages import Storage

from .errors import StorageError
from .jsonio import dumps
from .store import Record, Store


class StoreFileError(Exception):
    """The data file exists but cannot be loaded; it is left untouched."""


class AtomicJSONStorage(Storage):
    """TinyDB storage: whole document cached in memory, file replaced atomically per write."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._data: dict[str, dict[str, Any]] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            if not self.path.exists() or self.path.stat().st_size == 0:
                return
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError, OSError) as exc:
            raise StoreFileError(f"{self.path}: not a readable TinyDB JSON file ({exc})") from exc
        problem = _shape_problem(loaded)
        if problem:
            raise StoreFileError(f"{self.path}: not a sandbox TinyDB JSON file ({problem})")
        self._data = loaded

    def read(self) -> dict[str, dict[str, Any]] | None:
        return self._data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        self._data = data
        self.write_bytes([dumps(data)])  # orjson: 42 ms for 100k servers, where json.dumps took 271 ms

    def write_bytes(self, pieces: Iterable[bytes | memoryview]) -> None:
        """Replace the file with the concatenation of `pieces` atomically (touches nothing in
        memory: safe off-thread)."""
        tmp = self.path.parent / f".{self.path.name}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.writelines(pieces)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()  # a full disk gets its space back
            raise
        _fsync_dir(self.path.parent)

    def close(self) -> None:
        pass


def _shape_problem(loaded: Any) -> str | None:
    """What makes a parsed file something other than tables of `{doc_id: {"id": ..., ...}}`."""
    if not isinstance(loaded, dict):
        return "top level is not an object"
    for table, docs in loaded.items():
        if not isinstance(docs, dict):
            return f"table {table!r} is not an object"
        ids: set[str] = set()
        for doc_id, doc in docs.items():
            if not doc_id.isdigit() or not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
                return f"table {table!r}: document {doc_id!r} is not a record with a string id"
            if doc["id"] in ids:
                return f"table {table!r}: id {doc['id']!r} appears twice"
            ids.add(doc["id"])
    return None


class TinyDBStore(Store):
    """Tables in a TinyDB JSON file plus a journal of the writes since its last compaction.

    With `shared`, several processes (`serve --workers N`) keep one state in the same file:
    every transaction holds an exclusive `flock` on `.<file>.lock` and first applies the other
    processes' journal lines it has not seen; every read applies them too (a `stat`, and a read
    of the new lines when the journal grew), so a write acknowledged by one worker is seen by
    the next request to any worker. A compaction replaces the journal with a new empty file; the
    others notice the new inode and reload the TinyDB file under a shared lock."""

    MIN_COMPACTION = 1000  # journal entries before compacting, at the least

    def __init__(
        self,
        path: str | os.PathLike[str],
        shared: bool = False,
        group_commit: bool = False,
        background_compaction: bool = False,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.shared = shared
        self.follows = shared
        self.group_commit = group_commit
        self.background_compaction = background_compaction and not shared
        self._compactor: threading.Thread | None = None
        self._written = self._synced = 0  # journal lines written by this object; known to be on disk
        self._flushing: asyncio.Future[None] | None = None
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self.retired_path = self.path.with_name(self.path.name + ".journal.0")  # see `_compact_behind`
        self.storage: AtomicJSONStorage
        self._doc_ids: dict[str, dict[str, int]] = {}
        self._next_doc: dict[str, int] = {}
        self._journal: int | None = None  # a descriptor opened O_APPEND: unbuffered appends
        # Lines of the current (outermost) transaction, appended together when it ends, and how
        # to undo in memory what they did if that append fails (see `_flush`).
        self._pending: list[bytes] = []
        self._undo: list[tuple[str, str, Record | None, int | None]] | None = []
        self._compact_after = 0  # after a failed compaction: entries before the next attempt
        self._tail: BinaryIO | None = None  # reads the lines other processes append
        self._offset = 0  # bytes of the journal applied
        self._entries = 0  # lines in the journal
        self._compacted_records = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_name(f".{self.path.name}.lock")
            self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreFileError(f"{self.path}: cannot open ({exc})") from exc
        self._depth = 1  # the file lock is held (see `transaction`)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._reload()
            if (
                self._entries
                or self.journal_path.stat().st_size
                or self.retired_path.exists()
                or not self.path.exists()
            ):
                try:
                    self.compact()  # fold a crash's journal in (and drop a torn last line)
                except OSError as exc:
                    if not self.shared:
                        raise StoreFileError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
                    # a `--workers` process (re)started on a full disk: the state is loaded, the
                    # journal kept (a torn line is cut before the next append); serve it
                    logging.getLogger(__name__).warning("compaction of %s postponed (%s)", self.path, exc)
        except BaseException:
            self._release_files()  # closing the lock file releases the lock
            raise
        self._depth = 0
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # -- loading --------------------------------------------------------------------------
    def _load(self, table: str, doc_id: int, record: Record) -> None:
        super()._put(table, record)
        self._doc_ids.setdefault(table, {})[record["id"]] = doc_id
        self._next_doc[table] = max(self._next_doc.get(table, 1), doc_id + 1)

    def _reload(self) -> None:
        """Read the TinyDB file and the whole journal afresh (the file lock is held)."""
        for table in list(self._tables):
            super()._dropped(table)
        self._doc_ids.clear()
        self._next_doc.clear()
        self.storage = AtomicJSONStorage(self.path)
        for table, docs in (self.storage.read() or {}).items():
            for doc_id in sorted(docs, key=int):
                self._load(table, int(doc_id), docs[doc_id])
        self._compacted_records = sum(map(len, self._tables.values()))
        try:
            retired = self.retired_path.read_bytes()
        except FileNotFoundError:
            retired = b""
        except OSError as exc:
            raise StoreFileError(f"{self.retired_path}: cannot read ({exc})") from exc
        # A background compaction did not finish: its journal's lines come first. Replayed over a
        # file that already holds them they change nothing (each entry sets, deletes or drops).
        self._apply_lines(retired[: retired.rfind(b"\n") + 1], self.retired_path, 0)
        self._open_journal()
        self._follow()

    def _open_journal(self) -> None:
        """Open the journal now at `journal_path`; on failure the open one stays as it was."""
        try:
            journal = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                tail = open(self.journal_path, "rb")  # noqa: SIM115 - closed in close()
            except BaseException:
                os.close(journal)
                raise
        except OSError as exc:
            raise StoreFileError(f"{self.journal_path}: cannot open ({exc})") from exc
        self._close_journal()
        self._journal, self._tail = journal, tail
        self._offset = self._entries = 0

    def _close_journal(self) -> None:
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
        if self._tail is not None:
            self._tail.close()
            self._tail = None

    def _follow(self) -> int:
        """Apply the journal's complete lines past `_offset`; a torn last line waits (or, at a
        start, is dropped by the compaction that follows: a write that was never acknowledged)."""
        assert self._tail is not None
        self._tail.seek(self._offset)
        chunk = self._tail.read()
        end = chunk.rfind(b"\n") + 1
        if not end:
            return 0
        n = self._apply_lines(chunk[:end], self.journal_path, self._entries)
        self._offset += end
        self._entries += n
        return n

    def _apply_lines(self, chunk: bytes, path: Path, before: int) -> int:
        lines = chunk.split(b"\n")[:-1]
        for n, line in enumerate(lines):
            try:
                self._apply(json.loads(line))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                raise StoreFileError(f"{path}: entry {before + n + 1}: not a journal entry ({exc})") from exc
        return len(lines)

    def _apply(self, entry: dict[str, Any]) -> None:
        op, table = entry["op"], entry["t"]
        if op == "put":
            self._load(table, int(entry["d"]), entry["r"])
        elif op == "del":
            rid = entry["id"]
            row = self._tables.get(table, {}).get(rid)
            if row is not None:
                super()._remove(table, row)
                self._doc_ids[table].pop(rid, None)
        elif op == "drop":
            super()._dropped(table)
            self._doc_ids.pop(table, None)
        else:
            raise ValueError(f"unknown op {op!r}")

    # -- sharing between processes --------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside are applied in memory at once and appended to the journal together
        when the outermost transaction ends (`_flush`): all of them, or none, memory included."""
        with self.lock:
            outer = self._depth == 0
            locks = outer and self.shared
            if locks:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                if locks:
                    self._refresh()
                try:
                    yield
                finally:
                    if outer:
                        self._flush()  # also after an error: what was changed in memory is kept
            finally:
                self._depth -= 1
                if locks:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _refresh(self) -> None:
        if not self.shared or self._tail is None:
            return
        assert self._tail is not None
        try:
            current = os.stat(self.journal_path)
        except FileNotFoundError:
            current = None
        if current is None or current.st_ino != os.fstat(self._tail.fileno()).st_ino:
            if self._depth:
                self._reload()
            else:  # another process compacted: reload under a shared lock, so no compaction is half done
                fcntl.flock(self._lock_fd, fcntl.LOCK_SH)
                try:
                    self._reload()
                finally:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        elif current.st_size > self._offset:
            self._follow()

    # -- writes ---------------------------------------------------------------------------
    def _log(self, entry: dict[str, Any], undo: tuple[str, str, Record | None, int | None] | None) -> None:
        """Queue a journal line for the end of the transaction, with how to take back in memory
        what it did (None: only a reload can, see `_take_back`)."""
        self._pending.append(dumps(entry) + b"\n")
        if self._undo is not None:
            if undo is None:
                self._undo = None
            else:
                self._undo.append(undo)

    def _flush(self) -> None:
        """Append the transaction's lines to the journal in one write. If the write cannot be
        completed (ENOSPC, EACCES, EIO, ...), the journal is cut back to its previous length and
        memory taken back to what is on disk, and `StorageError` says nothing was saved: a
        failed append is never half in the journal, never replayed later, never visible."""
        if not self._pending:
            self._undo = []
            return
        data = b"".join(self._pending)
        lines = len(self._pending)
        undo = self._undo
        self._pending, self._undo = [], []
        assert self._journal is not None
        fd = self._journal
        try:
            if os.fstat(fd).st_size != self._offset:
                os.ftruncate(fd, self._offset)  # a torn line: a process killed mid-write, or a failed cut
            _write_all(fd, data)
            if not self.group_commit:
                os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):  # if this fails too, the next append cuts it first
                os.ftruncate(fd, self._offset)
            self._take_back(undo)
            logging.getLogger(__name__).warning(
                "write to %s failed, undone (%s)", self.journal_path, exc.strerror or exc
            )
            raise StorageError(exc.errno, f"{self.journal_path}: {exc.strerror or exc}") from None
        self._written += lines
        if not self.group_commit:
            self._synced = self._written
        self._offset += len(data)
        self._entries += lines
        if self._entries >= max(self.MIN_COMPACTION, self._compacted_records, self._compact_after):
            self._compact_safely()

    def _take_back(self, undo: list[tuple[str, str, Record | None, int | None]] | None) -> None:
        """Undo in memory the writes of a transaction that never reached the journal: each put
        in reverse order (the record before it, or none); after a delete or a drop, reload
        the state from the files instead (what they hold is exactly what was saved)."""
        if undo is None:
            self._join_compactor()  # its file and `.journal.0` must not change while read
            self._reload()
            return
        for table, rid, old, next_doc in reversed(undo):
            rows = self._tables.get(table, {})
            if old is None:
                if rid in rows:
                    super()._remove(table, rows[rid])
                self._doc_ids.get(table, {}).pop(rid, None)
                if next_doc is not None:
                    self._next_doc[table] = next_doc
            else:
                super()._put(table, old)

    def _compact_safely(self) -> None:
        """Compact; if the disk refuses, log it and try again after another `MIN_COMPACTION`
        writes (the journal holds every write meanwhile: nothing is at risk)."""
        try:
            if self.background_compaction:
                self._compact_behind()
            else:
                self.compact()
        except (OSError, StoreFileError) as exc:
            self._compact_after = self._entries + self.MIN_COMPACTION
            logging.getLogger(__name__).warning("compaction of %s postponed (%s)", self.path, exc)

    def _put(self, table: str, record: Record) -> None:
        ids = self._doc_ids.setdefault(table, {})
        rid = record["id"]
        doc_id = ids.get(rid)
        old = self._tables.get(table, {}).get(rid)
        next_doc = self._next_doc.get(table)
        if doc_id is None:
            doc_id = self._next_doc.get(table, 1)
            self._next_doc[table] = doc_id + 1
            ids[rid] = doc_id
        super()._put(table, record)
        self._log({"op": "put", "t": table, "d": doc_id, "r": record}, (table, rid, old, next_doc))

    def _remove(self, table: str, record: Record) -> None:
        super()._remove(table, record)
        self._doc_ids[table].pop(record["id"], None)
        self._log({"op": "del", "t": table, "id": record["id"]}, None)

    def _dropped(self, table: str) -> None:
        super()._dropped(table)
        self._doc_ids.pop(table, None)
        self._log({"op": "drop", "t": table}, None)

    def _snapshot(self) -> Tables:
        """The tables as of now, for `encode_tables`: shallow copies, which are enough, since a
        stored record is never changed in place (every write stores a new dict)."""
        return {table: (dict(rows), dict(self._doc_ids[table])) for table, rows in self._tables.items()}

    def compact(self) -> None:
        """Write every table to the TinyDB file (atomically), then start a new, empty journal.
        A failure (a full disk) changes nothing: the journal still holds every write."""
        with self.transaction():
            self._flush()
            self._join_compactor()
            self.storage.write_bytes(encode_tables(self._snapshot()))
            if self.retired_path.exists():  # the file holds its lines: gone before what follows them
                self.retired_path.unlink()
                _fsync_dir(self.path.parent)
            tmp = self.journal_path.with_name(f".{self.journal_path.name}.{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, self.journal_path)  # a new inode: how other processes see a compaction
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
            _fsync_dir(self.path.parent)
            self._open_journal()
            self._synced = self._written  # everything written so far is in the fsynced file
            # The next compaction comes after as many writes as there are records now: each
            # write's share of the rewrite stays constant, however large the data grows.
            self._compacted_records = sum(map(len, self._tables.values()))
            self._compact_after = 0

    def _compact_behind(self) -> None:
        """Compaction without stalling requests: in the lock, fsync the journal, copy the tables
        (shallow) and rename the journal to `<file>.journal.0` (a new one takes the writes); a
        thread then encodes the copies, writes the file and deletes `.journal.0`. A crash in
        between leaves file + `.journal.0` + journal, which a start replays in that order. One at
        a time; if one failed, the next compaction is a synchronous `compact`."""
        if self._compactor is not None and self._compactor.is_alive():
            return  # the journal grows a little longer meanwhile
        self._join_compactor()
        if self.retired_path.exists():
            self.compact()
            return
        with self.transaction():
            self.commit()  # its lines are acknowledged from the renamed file
            tables = self._snapshot()
            os.rename(self.journal_path, self.retired_path)
            try:
                self._open_journal()
            except BaseException:
                os.rename(self.retired_path, self.journal_path)  # the open one stays the journal
                raise
            _fsync_dir(self.path.parent)  # the new journal's name is durable before a write to it
            self._compacted_records = sum(map(len, self._tables.values()))
            self._compact_after = 0
        self._compactor = threading.Thread(
            target=self._write_behind, args=(tables,), name="tinydb-compaction", daemon=True
        )
        self._compactor.start()

    def _write_behind(self, tables: Tables) -> None:
        try:
            self.storage.write_bytes(encode_tables(tables))
            self.retired_path.unlink()
            _fsync_dir(self.path.parent)
        except Exception:  # logged; `.journal.0` stays, so the next compaction is a synchronous one
            logging.getLogger(__name__).exception("background compaction of %s failed", self.path)

    def _join_compactor(self) -> None:
        if self._compactor is not None:
            self._compactor.join()
            self._compactor = None

    # -- group commit -----------------------------------------------------------------------
    def writes(self) -> int:
        return self._written

    async def sync(self) -> None:
        """With `group_commit`, writes reach the OS at once and the disk here: the server awaits
        this before it answers a request that wrote, and one fsync, run off the event loop,
        covers the lines of every request waiting by then."""
        target = self._written
        while self._synced < target:
            if self._flushing is None:
                self._flushing = asyncio.ensure_future(self._fsync())
            await asyncio.shield(self._flushing)

    def commit(self) -> None:
        with self.lock:
            if self._journal is not None and self._synced < self._written:
                os.fsync(self._journal)
                self._synced = self._written

    async def _fsync(self) -> None:
        try:
            with self.lock:
                upto = self._written
                assert self._journal is not None
                fd = os.dup(self._journal)  # stays valid if a compaction replaces the file
            try:
                await asyncio.get_running_loop().run_in_executor(None, os.fsync, fd)
            finally:
                os.close(fd)
            self._synced = max(self._synced, upto)
        finally:
            self._flushing = None

    def close(self) -> None:
        with self.lock:
            if self._journal is None:
                return
            try:
                self.compact()
            except (OSError, StoreFileError) as exc:  # the journal keeps every write for the next start
                logging.getLogger(__name__).warning("final compaction of %s failed (%s)", self.path, exc)
                with contextlib.suppress(OSError):
                    self.commit()
            self._release_files()

    def _release_files(self) -> None:
        self._close_journal()
        os.close(self._lock_fd)


Tables = dict[str, tuple[dict[str, Record], dict[str, int]]]  # name -> (records by id, doc ids by id)


def encode_tables(tables: Tables, chunk: int = 2000) -> Iterator[bytes | memoryview]:
    """The TinyDB file of `tables`, in pieces of `chunk` records. Made for a thread: orjson holds
    the GIL for a whole call (30 ms for 100k servers at once) and so does joining 24 MB of
    bytes, so neither happens in one piece; between two pieces the event loop gets its turn."""
    yield b"{"
    for t, (table, (rows, doc_ids)) in enumerate(tables.items()):
        yield (b"," if t else b"") + dumps(table) + b":{"
        ids = list(rows)
        for i in range(0, len(ids), chunk):
            piece = dumps({str(doc_ids[rid]): rows[rid] for rid in ids[i : i + chunk]})
            yield memoryview(piece)[1:-1]  # the members, without braces (and without a copy)
            if i + chunk < len(ids):
                yield b","
        yield b"}"
    yield b"}"


def _write_all(fd: int, data: bytes) -> None:
    """`os.write` until all of `data` is written (a write may take less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
