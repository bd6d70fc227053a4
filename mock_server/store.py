"""The resource store: named tables of JSON records keyed by `id`. Knows nothing of HTTP.

Two backends share one interface: `MemoryStore` (``--memory``, tests) and `TinyDBStore`
(the default, a TinyDB JSON file; see `store_tinydb.py`). Records come back as copies, so
a caller can never change stored state except through the store.
"""

from __future__ import annotations

import copy
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Record = dict[str, Any]


class Store(ABC):
    """Thread-safe tables of records; insertion order is the listing order."""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store's lock across several calls (check-then-write sequences)."""
        with self.lock:
            yield

    @abstractmethod
    def insert(self, table: str, record: Record) -> Record: ...

    @abstractmethod
    def get(self, table: str, rid: str) -> Record | None: ...

    @abstractmethod
    def find(self, table: str, **equals: Any) -> list[Record]:
        """Every record whose fields equal `equals`, in insertion order."""

    @abstractmethod
    def update(self, table: str, rid: str, changes: Record) -> Record | None: ...

    @abstractmethod
    def replace(self, table: str, record: Record) -> Record: ...

    @abstractmethod
    def delete(self, table: str, rid: str) -> bool: ...

    @abstractmethod
    def tables(self) -> list[str]: ...

    @abstractmethod
    def drop(self, table: str) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Flush and release; the default has nothing to release."""


def _matches(record: Record, equals: dict[str, Any]) -> bool:
    return all(record.get(k) == v for k, v in equals.items())


class MemoryStore(Store):
    """Everything in process memory; gone at exit."""

    def __init__(self) -> None:
        super().__init__()
        self._tables: dict[str, dict[str, Record]] = {}

    def insert(self, table: str, record: Record) -> Record:
        with self.lock:
            rows = self._tables.setdefault(table, {})
            if record["id"] in rows:
                raise KeyError(f"duplicate id {record['id']} in {table}")
            rows[record["id"]] = copy.deepcopy(record)
            return copy.deepcopy(record)

    def get(self, table: str, rid: str) -> Record | None:
        with self.lock:
            row = self._tables.get(table, {}).get(rid)
            return copy.deepcopy(row) if row is not None else None

    def find(self, table: str, **equals: Any) -> list[Record]:
        with self.lock:
            rows = self._tables.get(table, {}).values()
            return [copy.deepcopy(r) for r in rows if _matches(r, equals)]

    def update(self, table: str, rid: str, changes: Record) -> Record | None:
        with self.lock:
            row = self._tables.get(table, {}).get(rid)
            if row is None:
                return None
            row.update(copy.deepcopy(changes))
            return copy.deepcopy(row)

    def replace(self, table: str, record: Record) -> Record:
        with self.lock:
            self._tables.setdefault(table, {})[record["id"]] = copy.deepcopy(record)
            return copy.deepcopy(record)

    def delete(self, table: str, rid: str) -> bool:
        with self.lock:
            return self._tables.get(table, {}).pop(rid, None) is not None

    def tables(self) -> list[str]:
        with self.lock:
            return list(self._tables)

    def drop(self, table: str) -> None:
        with self.lock:
            self._tables.pop(table, None)
