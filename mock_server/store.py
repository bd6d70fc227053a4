"""The resource store: named tables of JSON records keyed by `id`. Knows nothing of HTTP.

Two backends share one interface: `MemoryStore` (``--memory``, tests) and `TinyDBStore`
(the default: the same tables persisted in TinyDB's JSON format; see `store_tinydb.py`).
Records come back as copies, so a caller can never change stored state except through the
store; `scan` alone yields the stored records themselves, for read-only passes over many.
Records of one owner (`_account`, `_mode`) are indexed, so an account's listing does not
walk every account's records; fields declared with `index` (what lists filter on, unique
fields, links to a parent) are indexed per owner and value, so a filtered list, a uniqueness
check or a cascade costs the records it finds, not the account. Writes go through
`transaction()` and reads through `reading()`: a store shared between processes
(`TinyDBStore(shared=True)`) takes its file lock in the one and catches up with the other
processes' writes in both.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

Record = dict[str, Any]
T = TypeVar("T")
OWNER_FIELDS = ("_account", "_mode")


def clone(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): several times faster than deepcopy."""
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


class _Reading:
    """`Store.reading()`: the lock, then a catch-up with other processes' writes."""

    __slots__ = ("store",)

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store.lock.acquire()
        try:
            self.store._refresh()
        except BaseException:
            self.store.lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        self.store.lock.release()


def _matches(record: Record, equals: dict[str, Any]) -> bool:
    return all(record.get(k) == v for k, v in equals.items())


class Store:
    """Thread-safe tables of records, held in memory; insertion order is the listing order.

    A persistent store extends the hooks `_put`, `_remove` and `_dropped` and `close`; one
    shared with other processes sets `follows` and catches up with their writes in `_refresh`."""

    follows = False
    remote = False  # the state is on a server (Redis): a request meets it in `open` and `settle`

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._tables: dict[str, dict[str, Record]] = {}
        self._owners: dict[str, dict[tuple[Any, ...], dict[str, None]]] = {}
        self._versions: dict[str, int] = {}
        # Field indexes: table -> declared fields; table -> (field, owner, value) -> ids. A bucket
        # keeps insertion order but for a record that moved into it (its field changed): such a
        # bucket is marked and sorted by `_seq`, each record's place in the table, when next read.
        self._indexed: dict[str, tuple[str, ...]] = {}
        self._by_field: dict[str, dict[tuple[Any, ...], dict[str, None]]] = {}
        self._unsorted: set[tuple[str, tuple[Any, ...]]] = set()
        self._unindexable: set[tuple[str, str]] = set()  # a value was not hashable: scan instead
        self._seq: dict[str, dict[str, int]] = {}
        self._counter = itertools.count()
        self._reading = _Reading(self)  # one object: entered on every request, so no generator

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the store's lock across several calls (check-then-write sequences)."""
        with self.lock:
            yield

    def reading(self) -> AbstractContextManager[None]:
        """Hold the lock for a consistent read of several records, seeing every acknowledged write."""
        return self._reading

    def version(self, table: str) -> int:
        """A number that changes whenever `table` does (cache invalidation)."""
        if self.follows:
            with self.lock:
                self._refresh()
        return self._versions.get(table, 0)  # one dict read: atomic, no lock needed

    def _refresh(self) -> None:
        """Catch up with writes made outside this object (none, unless shared)."""

    # -- hooks ----------------------------------------------------------------------------
    def _put(self, table: str, record: Record) -> None:
        rows = self._tables.setdefault(table, {})
        rid = record["id"]
        old = rows.get(rid)
        owner = _owner(record)
        moved = False
        if old is None:
            self._seq.setdefault(table, {})[rid] = next(self._counter)
        elif _owner(old) != owner:
            self._owners[table][_owner(old)].pop(rid, None)
            moved = True
        rows[rid] = record
        mine = self._owners.setdefault(table, {}).setdefault(owner, {})
        mine[rid] = None
        if moved and len(mine) > 1:  # an older record joined another owner's: keep table order
            self._owners[table][owner] = dict.fromkeys(sorted(mine, key=self._seq[table].__getitem__))
        for field in self._indexed.get(table, ()):
            self._reindex(table, field, old, record)
        self._versions[table] = self._versions.get(table, 0) + 1

    def _remove(self, table: str, record: Record) -> None:
        rid = record["id"]
        del self._tables[table][rid]
        self._owners[table][_owner(record)].pop(rid, None)
        for field in self._indexed.get(table, ()):
            if (table, field) not in self._unindexable:
                self._unfile(table, (field, _owner(record), record.get(field)), rid)
        del self._seq[table][rid]
        self._versions[table] = self._versions.get(table, 0) + 1

    def _dropped(self, table: str) -> None:
        self._tables.pop(table, None)
        self._owners.pop(table, None)
        self._by_field.pop(table, None)
        self._seq.pop(table, None)
        self._unsorted = {u for u in self._unsorted if u[0] != table}
        self._unindexable = {u for u in self._unindexable if u[0] != table}
        self._versions[table] = self._versions.get(table, 0) + 1

    # -- field indexes ----------------------------------------------------------------------
    def index(self, table: str, *fields: str) -> None:
        """Index `table` by each of `fields` (per owner and value), from now on and for the
        records it holds; declaring a field again changes nothing."""
        with self.lock:
            new = [f for f in dict.fromkeys(fields) if f not in self._indexed.get(table, ())]
            self._indexed[table] = (*self._indexed.get(table, ()), *new)
            buckets = self._by_field.setdefault(table, {})
            for field in new:  # in table order, so every bucket starts sorted
                try:
                    for rid, record in self._tables.get(table, {}).items():
                        buckets.setdefault((field, _owner(record), record.get(field)), {})[rid] = None
                except TypeError:
                    self._abandon(table, field)

    def _reindex(self, table: str, field: str, old: Record | None, record: Record) -> None:
        if (table, field) in self._unindexable:
            return
        key = (field, _owner(record), record.get(field))
        if old is not None:
            was = (field, _owner(old), old.get(field))
            if was == key:
                return
            self._unfile(table, was, record["id"])
        try:
            bucket = self._by_field.setdefault(table, {}).setdefault(key, {})
        except TypeError:
            self._abandon(table, field)
            return
        if old is not None and bucket:  # a new record comes last: only one that moved can be out of order
            seq = self._seq[table]
            if seq[next(reversed(bucket))] > seq[record["id"]]:
                self._unsorted.add((table, key))
        bucket[record["id"]] = None

    def _abandon(self, table: str, field: str) -> None:
        """A value is a list or an object: this field is searched by scanning (until a drop)."""
        self._unindexable.add((table, field))
        buckets = self._by_field.get(table, {})
        for k in [k for k in buckets if k[0] == field]:
            del buckets[k]
            self._unsorted.discard((table, k))

    def _unfile(self, table: str, key: tuple[Any, ...], rid: str) -> None:
        buckets = self._by_field[table]
        bucket = buckets[key]
        del bucket[rid]
        if not bucket:
            del buckets[key]
            self._unsorted.discard((table, key))

    def _bucket(self, table: str, field: str, owner: tuple[Any, ...], value: Any) -> Collection[str] | None:
        """The ids of `owner`'s records whose `field` equals `value`, in table order; None
        when `field` is not indexed (or `value` cannot be looked up)."""
        if field not in self._indexed.get(table, ()) or (table, field) in self._unindexable:
            return None
        key = (field, owner, value)
        try:
            bucket = self._by_field.get(table, {}).get(key)
        except TypeError:
            return None
        if bucket is None:
            return ()
        if (table, key) in self._unsorted:
            bucket = dict.fromkeys(sorted(bucket, key=self._seq[table].__getitem__))
            self._by_field[table][key] = bucket
            self._unsorted.discard((table, key))
        return bucket

    def _candidates(self, table: str, equals: dict[str, Any]) -> tuple[Collection[str], dict[str, Any]]:
        """Ids, in table order, of a superset of the records matching `equals` (the smallest
        index that applies; the index itself, not a copy), and the part of `equals` they still
        have to be checked against."""
        if "_account" not in equals or "_mode" not in equals:  # OWNER_FIELDS
            return self._tables.get(table, {}), equals
        owner = (equals["_account"], equals["_mode"])
        best: Collection[str] = self._owners.get(table, {}).get(owner, {})
        if len(equals) == 2:  # the owner's records: the common list
            return best, {}
        used = None
        for field, value in equals.items():
            if field not in OWNER_FIELDS:
                bucket = self._bucket(table, field, owner, value)
                if bucket is not None and len(bucket) <= len(best):  # the same size: one test less
                    best, used = bucket, field
        rest = {k: v for k, v in equals.items() if k not in OWNER_FIELDS and k != used}
        return best, rest

    # -- interface ------------------------------------------------------------------------
    def insert(self, table: str, record: Record) -> Record:
        with self.transaction():
            if record["id"] in self._tables.get(table, {}):
                raise KeyError(f"duplicate id {record['id']} in {table}")
            self._put(table, clone(record))
            return record  # the caller's own dict: the stored one is the copy

    def get(self, table: str, rid: str) -> Record | None:
        with self.lock:
            self._refresh()
            row = self._tables.get(table, {}).get(rid)
            return clone(row) if row is not None else None

    def stored(self, table: str, rid: str) -> Record | None:
        """The stored record itself (read-only, as `scan`), seeing every acknowledged write."""
        with self.reading():
            return self._tables.get(table, {}).get(rid)

    def scan(self, table: str, **equals: Any) -> Iterator[Record]:
        """The stored records themselves whose fields equal `equals`, in insertion order.
        Read-only: a caller that needs to keep or change one copies it."""
        ids, rest = self._candidates(table, equals)
        rows = self._tables.get(table, {})
        return (rows[i] for i in list(ids) if not rest or _matches(rows[i], rest))

    def scan_any(self, table: str, field: str, values: Iterable[Any], **equals: Any) -> Iterator[Record]:
        """As `scan`, for the records whose `field` is any of `values`."""
        distinct: list[Any] = []
        for v in values:
            if not any(v == d for d in distinct):
                distinct.append(v)
        values = distinct
        if all(f in equals for f in OWNER_FIELDS):
            owner = tuple(equals[f] for f in OWNER_FIELDS)
            buckets = [self._bucket(table, field, owner, v) for v in values]
            if all(b is not None for b in buckets):
                ids = list(heapq.merge(*buckets, key=self._seq.get(table, {}).__getitem__))  # type: ignore[arg-type]
                rest = {k: v for k, v in equals.items() if k not in OWNER_FIELDS}
                rows = self._tables[table] if ids else {}
                return (rows[i] for i in ids if not rest or _matches(rows[i], rest))
        return (r for r in self.scan(table, **equals) if any(r.get(field) == v for v in values))

    def window(
        self, table: str, start: int, stop: int | None, extra: Sequence[Record] = (), /, **equals: Any
    ) -> tuple[list[Record], int]:
        """Records [start:stop] of those whose fields equal `equals` (stored ones, read-only, as
        `scan`), and how many match in all. `extra` (records of this table, not matching
        `equals`) are counted and paged in among them in table order. Filtering on the owner and
        at most one indexed field costs the page, not the account."""
        ids, rest = self._candidates(table, equals)
        rows = self._tables.get(table, {})
        if rest:
            ids = [i for i in ids if _matches(rows[i], rest)]
        total = len(ids) + len(extra)
        start, stop = min(start, total), (total if stop is None else min(stop, total))  # islice: <= maxsize
        if not extra:
            return [rows[i] for i in itertools.islice(ids, start, stop)], total
        seq = self._seq[table]
        added = {r["id"]: r for r in extra}
        merged = heapq.merge(ids, sorted(added, key=seq.__getitem__), key=seq.__getitem__)
        return [added.get(i) or rows[i] for i in itertools.islice(merged, start, stop)], total

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
            return record  # the caller's own dict: the stored one is the copy

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

    async def write(self, fn: Callable[[], T]) -> T:
        """Run a writing handler `fn`: every write it makes saved together, or none (see
        `RedisStore.write` for a store shared by replicas)."""
        await self.ready()
        with self.transaction():
            return fn()

    async def open(self, write: bool) -> None:
        """Begin a request on a remote store (see `RedisStore.open`); nothing to do here."""

    async def ready(self) -> None:
        """Before a writing handler on a remote store (see `RedisStore.ready`); nothing here."""

    async def settle(self) -> None:
        """End the request `open` began (see `RedisStore.settle`); nothing to do here."""

    def commit(self) -> None:
        """`sync` for code outside an event loop (start-up, seeding)."""

    def close(self) -> None:
        """Flush and release; memory holds nothing to release."""


class MemoryStore(Store):
    """`--memory`: nothing is persisted; gone at exit."""


def _owner(record: Record) -> tuple[Any, ...]:
    return (record.get("_account"), record.get("_mode"))  # OWNER_FIELDS, spelt out: called per record
