"""Generic resource behaviour declared by `x-resources`: create, read, list, update, delete.

Tenancy lives here: every record carries its owner's account and mode, and a record of
another owner is indistinguishable from one that does not exist. Lifecycles are applied on
read by `lifecycle.Lifecycles`; a list stores the views that came to rest (`_keep`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import orjson

from contract import Contract

from .clock import Clock
from .errors import ApiError, Problem, StorageError, conflict, not_found
from .ids import IdGenerator
from .jsonio import dumps
from .lifecycle import Lifecycles
from .store import Record, Store, clone

Owner = dict[str, str]
Records = list[Record]  # `Resources.list` shadows the builtin inside the class body
Shown = list[Any]  # views, or their `orjson.Fragment`s


def _properties(schema: dict[str, Any]) -> list[str]:
    """The schema's property names, in the order the spec lists them."""
    props = list(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        props += [p for p in _properties(sub) if p not in props]
    return props


def _a(noun: str) -> str:
    """`an instance`, `a server`."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _label(name: str) -> str:
    """`servers` → `Server`, `env_vars` → `Env var`."""
    return name.removesuffix("s").replace("_", " ").capitalize()


SHOWN_CACHE = 20_000  # records whose shown view is remembered (`Resources._shown`)


def _owned(record: Record | None, owner: Owner) -> bool:
    return record is not None and all(record.get(k) == v for k, v in owner.items())


class Resources:
    """The stored collections of one API."""

    def __init__(
        self,
        spec: Contract,
        store: Store,
        ids: IdGenerator,
        clock: Clock,
        delay_override: float | None = None,
    ) -> None:
        self.spec, self.store, self.ids, self.clock = spec, store, ids, clock
        self.lifecycles = Lifecycles(spec, clock, delay_override)
        self._lifecycles = self.lifecycles.moves  # read on every list and get: kept one lookup away
        self._settle = self.lifecycles.settle
        self._at_rest = self.lifecycles.at_rest
        self._resting = self.lifecycles.resting
        self._sources_of = self.lifecycles.sources_of
        self._moving = self.lifecycles.moving
        self._fields = {n: _properties(r.schema) for n, r in spec.resources.items()}
        self._views_cache: dict[int, tuple[Record, Record, orjson.Fragment]] = {}  # see `_shown`
        self._table_names = {n: f"{spec.name}:{n}" for n in spec.resources}
        self.children: dict[str, list[tuple[str, str]]] = {}
        for child, res in spec.resources.items():
            for field, parent_name in res.belongs_to.items():
                self.children.setdefault(parent_name, []).append((child, field))
        for op in spec.operations:
            xr = op.resource
            link = xr.parent if xr is not None else None
            if (
                xr is not None
                and link is not None
                and (xr.name, link.field) not in self.children.get(link.name, [])
            ):
                self.children.setdefault(link.name, []).append((xr.name, link.field))
        # What lists filter on, what must be unique, what links a child to its parent: indexed.
        for n, res in spec.resources.items():
            life = self._lifecycles.get(n)
            store.index(
                self.table(n),
                *res.filters.values(),
                *res.unique,
                *(field for child, field in itertools.chain(*self.children.values()) if child == n),
                *((life[0],) if life else ()),
            )
        self._masked = {n: res.masked for n, res in spec.resources.items() if res.masked}

    def table(self, name: str) -> str:
        return self._table_names.get(name) or f"{self.spec.name}:{name}"

    # -- values -------------------------------------------------------------------------
    def generate(self, kind: str | None) -> Any:
        if kind == "ipv4":
            return self.ids.ipv4()
        if kind == "now":
            return self.clock.isoformat()
        if kind == "uuid":
            return self.ids.uuid()
        if kind == "secret":
            return self.ids.secret("", 40)
        if kind == "hostname":
            return f"{self.ids.short('', 10)}.{self.spec.name}.sandbox.test"
        return None

    def new_id(self, name: str) -> str:
        res = self.spec.resources[name]
        if res.id_style == "uuid":
            return self.ids.uuid()
        return self.ids.short(res.id_prefix or "")

    def public(self, name: str, record: Record) -> Record:
        """The record as the API shows it: only the schema's fields, no hidden ones."""
        shown = {k: record[k] for k in self._fields[name] if k in record}
        mask = self._masked.get(name)
        return {**shown, **{k: v for k, v in mask.items() if k in shown}} if mask else shown

    def _shown(self, name: str, record: Record) -> Record:
        """`public(record)` of a stored record at rest (no lifecycle, or a status nothing
        leaves), remembered: its view cannot change with the clock. Stored records are never
        changed in place (every write stores a new dict), so the stored object's identity is the
        key; the cache holds the object, so its id cannot be reused while cached. The view is
        shared: callers must not change it."""
        hit = self._views_cache.get(id(record))
        if hit is not None and hit[0] is record:
            return hit[1]
        return self._remember(name, record)[1]

    def _remember(self, name: str, record: Record) -> tuple[Record, Record, orjson.Fragment]:
        """The record's view, and its JSON encoded once (a page then joins, not encodes)."""
        if len(self._views_cache) >= SHOWN_CACHE:
            self._views_cache.clear()
        view = self.public(name, record)
        hit = self._views_cache[id(record)] = (record, view, orjson.Fragment(dumps(view)))
        return hit

    # -- operations ---------------------------------------------------------------------
    def create(self, name: str, owner: Owner, fields: Record, extra: Record | None = None) -> Record:
        res = self.spec.resources[name]
        record: Record = {"id": self.new_id(name)}
        for f, value in res.defaults.items():
            record[f] = value
        for f, kind in res.generate.items():
            record[f] = self.generate(kind)
        record.update({k: v for k, v in fields.items() if k != "id" and not k.startswith("_")})
        record.update(extra or {})
        record.update(owner)
        record["_since"] = self.clock.now()
        with self.store.transaction():
            self._check_references(name, owner, record)
            self._check_unique(name, owner, record)
            return self.store.insert(self.table(name), record)

    def _check_references(self, name: str, owner: Owner, record: Record) -> None:
        """A `belongs-to` field must name a record of the same owner (404 naming the field)."""
        for field, parent in self.spec.resources[name].belongs_to.items():
            if field in record and not _owned(self.store.get(self.table(parent), record[field]), owner):
                raise ApiError(
                    404,
                    "NOT_FOUND",
                    f"{_label(parent)} not found",
                    [Problem(field, f"no such {_label(parent).lower()} in this account")],
                )

    def _check_unique(self, name: str, owner: Owner, record: Record) -> None:
        for f in self.spec.resources[name].unique:
            if f in record:
                for other in self.store.find(self.table(name), **owner, **{f: record[f]}):
                    if other["id"] != record["id"]:
                        raise conflict(
                            f"A {name[:-1] if name.endswith('s') else name} with this {f} already exists",
                            Problem(f, "already taken"),
                        )

    def get(self, name: str, owner: Owner, rid: str, **equals: Any) -> Record:
        record = self.store.get(self.table(name), rid)
        if record is None or any(record.get(k) != v for k, v in {**owner, **equals}.items()):
            raise not_found(_label(name))
        return self._settle(name, record)

    def shown(self, name: str, owner: Owner, rid: str, **equals: Any) -> Record:
        """`public(get(...))`, not copied: for a record at rest, the view `_shown` shares."""
        record = self.store.stored(self.table(name), rid)
        if record is None or any(record.get(k) != v for k, v in owner.items()):
            raise not_found(_label(name))
        if equals and any(record.get(k) != v for k, v in equals.items()):
            raise not_found(_label(name))
        life = self._lifecycles.get(name)
        if life is None or record.get(life[0]) not in life[1]:
            return self._shown(name, record)
        return self.public(name, self._settle(name, record))

    def _views(
        self,
        name: str,
        owner: Owner,
        equals: dict[str, Any],
        arrived: list[tuple[Record, Record]] | None = None,
        stored_in: list[Any] | None = None,
    ) -> Iterator[Record]:
        """Settled views (not copies) of the owner's records whose fields as of now equal `equals`.

        A filter on the lifecycle's status reads the records stored in `stored_in` (by default,
        every status that leads to the one asked for). Each view that settled into a status
        nothing leaves is added, with its stored record, to `arrived` (see `_keep`)."""
        moving = self._moving(name)
        if moving not in equals:
            records = self.store.scan(self.table(name), **owner, **equals)
        else:  # a status is only known once settled
            stored = {k: v for k, v in equals.items() if k != moving}
            sources = stored_in if stored_in is not None else self._sources_of(name, equals[moving])
            if sources is None:
                records = self.store.scan(self.table(name), **owner, **stored)
            else:
                records = self.store.scan_any(self.table(name), moving, sources, **owner, **stored)
        for record in records:
            view = self._settle(name, record)
            if arrived is not None and view is not record and self._at_rest(name, view):
                arrived.append((record, view))
            if moving not in equals or view.get(moving) == equals[moving]:
                yield view

    def _keep(self, name: str, arrived: list[tuple[Record, Record]]) -> None:
        """Store the views that settled into a status nothing leaves, so that the status index
        finds them there, not among the records still to settle. No reader can tell: such a view
        no longer depends on the clock (which only moves forward), and settles to itself. A
        record written meanwhile is left as it is."""
        if not arrived:
            return
        table = self.table(name)
        with contextlib.suppress(StorageError), self.store.transaction():  # a full disk: kept next time
            for record, view in arrived:
                if self.store.get(table, record["id"]) == record:
                    self.store.replace(table, view)

    def require_status(
        self,
        name: str,
        record: Record,
        allowed: set[str] | frozenset[str],
        action: str,
        field: str = "action",
    ) -> None:
        """A state machine's guard: `action` on a record outside `allowed` is a 409 CONFLICT."""
        status = record.get(self._moving(name) or "status")
        if status not in allowed:
            raise conflict(
                f"Cannot {action} {_a(_label(name).lower())} that is {status}",
                Problem(field, f"needs status {' or '.join(sorted(allowed))}"),
            )

    def pending(self, name: str) -> list[Record]:
        """What the clock will still move (the dashboard's "settling"): each record of `name`
        whose status some transition leaves, with its status now, the next one and when (epoch)."""
        life = self._lifecycles.get(name)
        if life is None:
            return []
        status_field, by_from = life
        with self.store.reading():
            rows = list(self.store.scan_any(self.table(name), status_field, list(by_from)))
        out: list[Record] = []
        for record in rows:
            view = self._settle(name, record)
            step = self.lifecycles.next_step(name, view)
            if step is None:
                continue
            out.append(
                {
                    "id": record["id"],
                    "account": record.get("_account"),
                    "mode": record.get("_mode"),
                    "status": view.get(status_field),
                    "next": step[0],
                    "due": step[1],
                }
            )
        return out

    def list(self, name: str, owner: Owner, **equals: Any) -> Records:
        arrived: list[tuple[Record, Record]] = []
        with self.store.reading():
            found = [clone(v) for v in self._views(name, owner, equals, arrived)]
        self._keep(name, arrived)
        return found

    def public_page(
        self, name: str, owner: Owner, params: dict[str, Any], *, encoded: bool = False, **equals: Any
    ) -> tuple[Shown, dict[str, Any]]:
        """One page as the API pages and shows it (`public` records), and its meta; only the page
        is settled, unless the filter is on the lifecycle's status, which only settling can tell.

        Not copied: the views of records at rest are shared between calls (`_shown`) and nested
        values are the stored ones. Stored records are never changed in place (every write
        stores a new dict), so this is safe to serialise; a caller that changes what it gets
        must `clone` it first. With `encoded`, records at rest come as `orjson.Fragment`s of
        their views (to serialise, never to read)."""
        moving = self._moving(name)
        arrived: list[tuple[Record, Record]] = []
        table = self.table(name)
        with self.store.reading():
            by_status = moving is not None and moving in equals
            status = equals[moving] if moving is not None and by_status else None
            sources = self._sources_of(name, status) if by_status else None
            if sources is not None and self._resting(name, status):
                # A status nothing leaves: the records stored in it are in the page as they are;
                # those stored on their way to it are settled, and paged in among them.
                coming = list(self._views(name, owner, equals, arrived, stored_in=sources[1:]))
                start, stop, meta = self.bounds(params)
                page, total = self.store.window(table, start, stop, coming, **owner, **equals)
                meta = {**meta, "total": total}
            elif by_status:
                page, meta = self.page(list(self._views(name, owner, equals, arrived)), params)
            else:
                start, stop, meta = self.bounds(params)
                stored_page, total = self.store.window(table, start, stop, **owner, **equals)
                meta = {**meta, "total": total}
                shown = []
                life, cache = self._lifecycles.get(name), self._views_cache
                for r in stored_page:
                    if life is None or r.get(life[0]) not in life[1]:  # at rest: see `_shown`
                        hit = cache.get(id(r))
                        if hit is None or hit[0] is not r:
                            hit = self._remember(name, r)
                        shown.append(hit[2] if encoded else hit[1])
                        continue
                    v = self._settle(name, r)
                    if v is not r and self._at_rest(name, v):
                        arrived.append((r, v))  # came to rest: stored by `_keep`
                    shown.append(self.public(name, v))
                page = None
            if page is not None:
                shown = [self.public(name, r) for r in page]
        self._keep(name, arrived)
        return shown, meta

    def update(self, name: str, owner: Owner, rid: str, changes: Record) -> Record:
        with self.store.transaction():
            current = self.get(name, owner, rid)
            clean = {k: v for k, v in changes.items() if k != "id" and not k.startswith("_")}
            if "updated_at" in self._fields[name]:
                clean["updated_at"] = self.clock.isoformat()
            self._check_unique(name, owner, {**current, **clean})
            if self._moving(name) in clean:
                clean["_since"] = self.clock.now()  # a new status starts its own timer
            return self.store.replace(self.table(name), {**current, **clean})  # the settled view, updated

    def delete(self, name: str, owner: Owner, rid: str, **equals: Any) -> Record:
        """Delete the record and, so nothing dangles, every child declared under it."""
        with self.store.transaction():
            record = self.get(name, owner, rid, **equals)
            for child, field in self.children.get(name, []):
                for c in self.store.find(self.table(child), **owner, **{field: rid}):
                    self.delete(child, owner, c["id"])
            self.store.delete(self.table(name), rid)
            return record

    def upsert(
        self, name: str, owner: Owner, key: str, fields: Record, extra: Record | None = None
    ) -> tuple[Record, bool]:
        """Create, or replace the fields of, the record whose `key` equals the body's."""
        with self.store.transaction():
            match = self.store.find(self.table(name), **owner, **(extra or {}), **{key: fields[key]})
            if match:
                return self.update(name, owner, match[0]["id"], fields), False
            return self.create(name, owner, fields, extra), True

    # -- listing ------------------------------------------------------------------------
    def bounds(self, params: dict[str, Any]) -> tuple[int, int | None, dict[str, Any]]:
        """Where the requested page starts and stops, and the meta the list envelope shows
        (without `total`), as the API pages: page/per_page, limit/offset, or not at all."""
        pag = self.spec.pagination
        style, default = pag.style, pag.default or 20
        if style == "page":
            page, per_page = params.get("page", 1), params.get("per_page", default)
            start = (page - 1) * per_page
            return start, start + per_page, {"page": page, "per_page": per_page}
        if style == "offset":
            limit, offset = params.get("limit", default), params.get("offset", 0)
            return offset, offset + limit, {"limit": limit, "offset": offset}
        return 0, None, {}

    def page(self, items: Records, params: dict[str, Any]) -> tuple[Records, dict[str, Any]]:
        """Slice `items` as the API pages them; the meta values the list envelope shows."""
        start, stop, meta = self.bounds(params)
        return items[start:stop], {**meta, "total": len(items)}

    def filters(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        declared = self.spec.resources[name].filters
        return {f: params[p] for p, f in declared.items() if p in params}
