"""The resource store: named tables of JSON records keyed by `id`. Knows nothing of HTTP.

Two backends share one interface: `MemoryStore` (``--memory``, tests) and `TinyDBStore`
(the default: the same tables persisted in TinyDB's JSON format; see `store_tinydb.py`).
Records come back as copies, so a caller can never change stored state except through the
store; `scan` alone yields the stored records themselves, for read-only passes over many.
Records of one owner (`_account`, `_mode`) are indexed, so an account's listing does not
walk every account's records. Writes go through `transaction()` and reads through `reading()`:
a store shared between processes (`TinyDBStore(shared=True)`) takes its file lock in the one
and catches up with the other processes' writes in both.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Record = dict[str, Any]
OWNER_FIELDS = ("_account", "_mode")


def clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): several times faster than deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def _matches(record: Record, equals: dict[str, Any]) -> bool:
    return all(record.get(k) == v for k, v in equals.items())


class Store:
    """Thread-safe tables of records, held in memory; insertion order is the listing order.

    A persistent store extends the hooks `_put`, `_remove` and `_dropped` and `close`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._tables: dict[str, dict[str, Record]] = {}
        self._owners: dict[str, dict[tuple[Any, ...], dict[str, None]]] = {}
        self._versions: dict[str, int] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store's lock across several calls (check-then-write sequences)."""
        with self.lock:
            yield

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the lock for a consistent read of several records, seeing every acknowledged write."""
        with self.lock:
            self._refresh()
            yield

    def version(self, table: str) -> int:
        """A number that changes whenever `table` does (cache invalidation)."""
        with self.lock:
            self._refresh()
            return self._versions.get(table, 0)

    def _refresh(self) -> None:
        """Catch up with writes made outside this object (none, unless shared)."""

    # -- hooks ----------------------------------------------------------------------------
    def _put(self, table: str, record: Record) -> None:
        rows = self._tables.setdefault(table, {})
        old = rows.get(record["id"])
        if old is not None and _owner(old) != _owner(record):
            self._owners[table][_owner(old)].pop(record["id"], None)
        rows[record["id"]] = record
        self._owners.setdefault(table, {}).setdefault(_owner(record), {})[record["id"]] = None
        self._versions[table] = self._versions.get(table, 0) + 1

    def _remove(self, table: str, record: Record) -> None:
        del self._tables[table][record["id"]]
        self._owners[table][_owner(record)].pop(record["id"], None)
        self._versions[table] = self._versions.get(table, 0) + 1

    def _dropped(self, table: str) -> None:
        self._tables.pop(table, None)
        self._owners.pop(table, None)
        self._versions[table] = self._versions.get(table, 0) + 1

    # -- interface ------------------------------------------------------------------------
    def insert(self, table: str, record: Record) -> Record:
        with self.transaction():
            if record["id"] in self._tables.get(table, {}):
                raise KeyError(f"duplicate id {record['id']} in {table}")
            self._put(table, clone(record))
            return clone(record)

    def get(self, table: str, rid: str) -> Record | None:
        with self.lock:
            self._refresh()
            row = self._tables.get(table, {}).get(rid)
            return clone(row) if row is not None else None

    def scan(self, table: str, **equals: Any) -> Iterator[Record]:
        """The stored records themselves whose fields equal `equals`, in insertion order.
        Read-only: a caller that needs to keep or change one copies it."""
        rows = self._tables.get(table, {})
        if all(f in equals for f in OWNER_FIELDS):
            ids = list(self._owners.get(table, {}).get(tuple(equals[f] for f in OWNER_FIELDS), {}))
            rest = {k: v for k, v in equals.items() if k not in OWNER_FIELDS}  # the index did those
            return (rows[i] for i in ids if not rest or _matches(rows[i], rest))
        return (r for r in list(rows.values()) if _matches(r, equals))

    def window(self, table: str, start: int, stop: int | None, **equals: Any) -> tuple[list[Record], int]:
        """Records [start:stop] of those whose fields equal `equals` (stored ones, read-only, as
        `scan`), and how many match in all. An owner-only filter costs the page, not the account."""
        ids = self._owners.get(table, {}).get(tuple(equals.get(f) for f in OWNER_FIELDS), {})
        if set(equals) == set(OWNER_FIELDS):
            rows, total = (self._tables[table] if ids else {}), len(ids)
            start, stop = (
                min(start, total),
                (total if stop is None else min(stop, total)),
            )  # islice: <= maxsize
            return [rows[i] for i in itertools.islice(ids, start, stop)], total
        matching = list(self.scan(table, **equals))
        return matching[start:stop], len(matching)

    def find(self, table: str, **equals: Any) -> list[Record]:
        """Copies of every record whose fields equal `equals`, in insertion order."""
        with self.lock:
            self._refresh()
            return [clone(r) for r in self.scan(table, **equals)]

    def update(self, table: str, rid: str, changes: Record) -> Record | None:
        with self.transaction():
            row = self._tables.get(table, {}).get(rid)
            if row is None:
                return None
            self._put(table, {**row, **clone(changes)})
            return clone(self._tables[table][rid])

    def replace(self, table: str, record: Record) -> Record:
        """Insert, or replace the whole record with that id (keeping its place in the order)."""
        with self.transaction():
            self._put(table, clone(record))
            return clone(record)

    def delete(self, table: str, rid: str) -> bool:
        with self.transaction():
            row = self._tables.get(table, {}).get(rid)
            if row is None:
                return False
            self._remove(table, row)
            return True

    def tables(self) -> list[str]:
        with self.lock:
            self._refresh()
            return list(self._tables)

    def drop(self, table: str) -> None:
        with self.transaction():
            self._dropped(table)

    def writes(self) -> int:
        """How many writes this object has made (a mark for `sync`)."""
        return 0

    async def sync(self) -> None:
        """Return once every write made so far is durable (memory: at once)."""

    def commit(self) -> None:
        """`sync` for code outside an event loop (start-up, seeding)."""

    def close(self) -> None:
        """Flush and release; memory holds nothing to release."""


class MemoryStore(Store):
    """`--memory`: nothing is persisted; gone at exit."""


def _owner(record: Record) -> tuple[Any, ...]:
    return tuple(record.get(f) for f in OWNER_FIELDS)
