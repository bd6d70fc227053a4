"""The default store: a TinyDB JSON file, written atomically, read from memory.

TinyDB's own `JSONStorage` rewrites the file in place (a `kill -9` mid-write leaves it
unreadable) and re-reads the whole file on every query. `AtomicJSONStorage` keeps the
document in memory and replaces the file atomically (temp file, fsync, rename, fsync dir)
on each write; `TinyDBStore` keeps an `id -> doc_id` index so a get is a dict lookup.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from .store import Record, Store, _matches


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
            json.dump(data, fh, separators=(",", ":"))
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
    """Tables of records in one TinyDB file; each record is a TinyDB document."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self.db = TinyDB(self.path, storage=AtomicJSONStorage)
        self._index: dict[str, dict[str, int]] = {}
        for name in self.db.tables():
            self._index[name] = {doc["id"]: doc.doc_id for doc in self.db.table(name).all()}

    def _table(self, table: str) -> Table:
        return self.db.table(table, cache_size=0)

    def insert(self, table: str, record: Record) -> Record:
        with self.lock:
            index = self._index.setdefault(table, {})
            if record["id"] in index:
                raise KeyError(f"duplicate id {record['id']} in {table}")
            index[record["id"]] = self._table(table).insert(copy.deepcopy(record))
            return copy.deepcopy(record)

    def get(self, table: str, rid: str) -> Record | None:
        with self.lock:
            doc_id = self._index.get(table, {}).get(rid)
            if doc_id is None:
                return None
            doc = self._table(table).get(doc_id=doc_id)
            return copy.deepcopy(dict(doc)) if doc is not None else None

    def find(self, table: str, **equals: Any) -> list[Record]:
        with self.lock:
            if table not in self._index:
                return []
            return [copy.deepcopy(dict(d)) for d in self._table(table).all() if _matches(d, equals)]

    def update(self, table: str, rid: str, changes: Record) -> Record | None:
        with self.lock:
            doc_id = self._index.get(table, {}).get(rid)
            if doc_id is None:
                return None
            self._table(table).update(copy.deepcopy(changes), doc_ids=[doc_id])
            return self.get(table, rid)

    def replace(self, table: str, record: Record) -> Record:
        with self.lock:
            doc_id = self._index.get(table, {}).get(record["id"])
            if doc_id is None:
                return self.insert(table, record)
            fresh = copy.deepcopy(record)

            def swap(doc: MutableMapping[str, Any]) -> None:
                doc.clear()
                doc.update(fresh)

            self._table(table).update(swap, doc_ids=[doc_id])
            return copy.deepcopy(record)

    def delete(self, table: str, rid: str) -> bool:
        with self.lock:
            doc_id = self._index.get(table, {}).pop(rid, None)
            if doc_id is None:
                return False
            self._table(table).remove(doc_ids=[doc_id])
            return True

    def tables(self) -> list[str]:
        with self.lock:
            return list(self._index)

    def drop(self, table: str) -> None:
        with self.lock:
            self.db.drop_table(table)
            self._index.pop(table, None)

    def close(self) -> None:
        with self.lock:
            self.db.close()
