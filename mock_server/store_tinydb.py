"""The default store: TinyDB's JSON file format, held in memory, made durable by a journal.

Measured traps (`../shared/TRAPS.md`): TinyDB's `JSONStorage` rewrites the file in place (a
`kill -9` mid-write leaves it unreadable), and every TinyDB table operation reads, rebuilds
and rewrites the whole file, so a write at 100k records costs ~800 ms. Here the tables live in
memory (`Store`), each acknowledged write is first appended to `<file>.journal` and fsynced
(one short line: the cost does not grow with the data), and the journal is compacted into the
TinyDB file — written atomically: temp file, fsync, rename, fsync dir — once it holds as many
entries as it had records (so the amortised cost per write stays flat), at start and at a
clean shutdown. After a clean shutdown the file alone is a plain TinyDB database
(`{table: {doc_id: record}}`), readable by `tinydb.TinyDB`; after a crash, start-up replays
the journal (a torn last line, the one write that was never acknowledged, is dropped).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

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
        tmp = self.path.parent / f".{self.path.name}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, separators=(",", ":")))  # json.dump's chunked path is ~3x slower
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

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
    """Tables in a TinyDB JSON file plus a journal of the writes since its last compaction."""

    MIN_COMPACTION = 1000  # journal entries before compacting, at the least

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self.storage = AtomicJSONStorage(self.path)
        self._doc_ids: dict[str, dict[str, int]] = {}
        self._next_doc: dict[str, int] = {}
        for table, docs in (self.storage.read() or {}).items():
            for doc_id in sorted(docs, key=int):
                self._load(table, int(doc_id), docs[doc_id])
        replayed = self._replay()
        self._journal = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._entries = 0
        self._compacted_records = sum(map(len, self._tables.values()))
        if replayed or not self.path.exists():
            self.compact()  # fold a crash's journal in; a new store starts as an empty TinyDB file

    # -- loading --------------------------------------------------------------------------
    def _load(self, table: str, doc_id: int, record: Record) -> None:
        super()._put(table, record)
        self._doc_ids.setdefault(table, {})[record["id"]] = doc_id
        self._next_doc[table] = max(self._next_doc.get(table, 1), doc_id + 1)

    def _replay(self) -> int:
        try:
            lines = self.journal_path.read_text(encoding="utf-8").split("\n")
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            raise StoreFileError(f"{self.journal_path}: unreadable journal ({exc})") from exc
        count = 0
        for n, line in enumerate(lines, 1):
            if not line:
                continue
            try:
                entry = json.loads(line)
                self._apply(entry)
            except (ValueError, KeyError, TypeError) as exc:
                if n >= len(lines) - 1:  # a torn last line: a write that was never acknowledged
                    break
                raise StoreFileError(f"{self.journal_path}:{n}: not a journal entry ({exc})") from exc
            count += 1
        return count

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

    # -- writes ---------------------------------------------------------------------------
    def _log(self, entry: dict[str, Any]) -> None:
        self._journal.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._entries += 1
        if self._entries >= max(self.MIN_COMPACTION, self._compacted_records):
            self.compact()

    def _put(self, table: str, record: Record) -> None:
        ids = self._doc_ids.setdefault(table, {})
        doc_id = ids.get(record["id"])
        if doc_id is None:
            doc_id = self._next_doc.get(table, 1)
            self._next_doc[table] = doc_id + 1
            ids[record["id"]] = doc_id
        super()._put(table, record)
        self._log({"op": "put", "t": table, "d": doc_id, "r": record})

    def _remove(self, table: str, record: Record) -> None:
        super()._remove(table, record)
        self._doc_ids[table].pop(record["id"], None)
        self._log({"op": "del", "t": table, "id": record["id"]})

    def _dropped(self, table: str) -> None:
        super()._dropped(table)
        self._doc_ids.pop(table, None)
        self._log({"op": "drop", "t": table})

    def compact(self) -> None:
        """Write every table to the TinyDB file (atomically), then empty the journal."""
        with self.lock:
            self.storage.write(
                {
                    table: {str(self._doc_ids[table][rid]): row for rid, row in rows.items()}
                    for table, rows in self._tables.items()
                }
            )
            with open(self.journal_path, "w", encoding="utf-8") as fh:
                fh.flush()
                os.fsync(fh.fileno())
            self._entries = 0
            # The next compaction comes after as many writes as there are records now: each
            # write's share of the rewrite stays constant, however large the data grows.
            self._compacted_records = sum(map(len, self._tables.values()))

    def close(self) -> None:
        with self.lock:
            if self._journal.closed:
                return
            self.compact()
            self._journal.close()
