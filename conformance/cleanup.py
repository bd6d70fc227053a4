"""Leave the backend as we found it: every record the run creates, in any phase, is tracked from
the create response and deleted at the end through the API itself, children before parents.

A record is recognised from a successful POST or PUT whose single-envelope body (`contract.data`)
holds an `id` the run has not seen: its collection is the operation's own (`x-resource`, a
collection's create operation) or the one whose id prefix it carries (an instance returned by
`POST /instances/{id}/clone`). Deletes the run makes itself (the lifecycle check, Schemathesis'
stateful phase) are tracked too, so nothing is deleted twice. What cannot be deleted (no delete
operation in the spec, a refusal) is left and reported with the reason.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from contract import Contract, Operation, Resource

from .http import Client


@dataclass
class Tracked:
    collection: str
    id: str
    owner: str | None  # the identity that created it ("token", "limited", "other"), None if unknown
    data: dict[str, Any]
    source: str  # which part of the run created it
    made_at: str = ""  # the path template of the operation that created it
    deleted: bool = False
    left: str | None = None  # why it is still there


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None


@dataclass
class Tracker:
    contract: Contract
    tokens: Mapping[str, str | None]
    records: dict[str, Tracked] = field(default_factory=dict)  # id → record, in creation order
    seen_ids: set[str] = field(default_factory=set)  # every record id a response showed
    spared: int = 0  # writes to a record the run did not create, sent to a stand-in id instead
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- what a response tells ------------------------------------------------------------------
    def identity(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        value = authorization.partition(" ")[2].strip() or authorization.strip()
        return next((k for k, v in self.tokens.items() if v and v == value), None)

    def _collection(self, op: Operation | None, record_id: str) -> Resource | None:
        """The collection a new record belongs to: the operation's, else by the id's prefix."""
        for res in self.contract.resources.values():
            if op is not None and res.create_op is op:
                return res
        if op is not None and op.resource is not None and op.resource.op == "create":
            found = self.contract.resources.get(op.resource.name)
            if found is not None:
                return found
        by_prefix = [
            r for r in self.contract.resources.values() if r.id_prefix and record_id.startswith(r.id_prefix)
        ]
        return max(by_prefix, key=lambda r: len(r.id_prefix or "")) if by_prefix else None

    def seen(
        self,
        op: Operation | None,
        method: str,
        status: int,
        content: bytes,
        identity: str | None,
        path_params: Mapping[str, Any] | None = None,
        source: str = "run",
    ) -> None:
        """Learn from one exchange: a record created, or one of ours deleted."""
        method = method.upper()
        if method == "GET" and 200 <= status < 300:
            self._note_ids(content)
            return
        if method == "DELETE" and op is not None and (200 <= status < 300 or status == 404):
            names = [p.name for p in op.path_params]
            if names and path_params:
                target = self.records.get(str(path_params.get(names[-1])))
                if target is not None and 200 <= status < 300:
                    with self._lock:
                        target.deleted = True
            return
        if method not in ("POST", "PUT") or not 200 <= status < 300:
            return
        body = _json(content)
        data = self.contract.data(body) if body is not None else None
        if not isinstance(data, dict) and isinstance(body, dict) and "id" in body:
            data = body
        if not isinstance(data, dict) or not isinstance(data.get("id"), (str, int)):
            return
        record_id = str(data["id"])
        own = [p.name for p in op.path_params] if op is not None else []
        if path_params and own and str(path_params.get(own[-1])) == record_id:
            return  # an action on an existing record answers with that record
        res = self._collection(op, record_id)
        if res is None:
            return
        with self._lock:
            if record_id not in self.records:
                made_at = op.path if op is not None else ""
                self.records[record_id] = Tracked(
                    res.name, record_id, identity, data, source, made_at=made_at
                )

    def _note_ids(self, content: bytes) -> None:
        body = _json(content)
        if body is None:
            return
        found = [self.contract.data(body), *self.contract.items(body)]
        ids = {str(x["id"]) for x in found if isinstance(x, dict) and isinstance(x.get("id"), (str, int))}
        with self._lock:
            self.seen_ids |= ids

    def spare(self, method: str, path_params: dict[str, Any]) -> list[str]:
        """Schemathesis reuses ids it saw in responses: a write (any method but GET) aimed at a
        record the run did not create (one that was there before) goes to a stand-in id of the
        same form instead, which no record has. Returns the parameters replaced."""
        if method.upper() in ("GET", "HEAD", "OPTIONS"):
            return []
        replaced = []
        for name, value in list(path_params.items()):
            text = str(value)
            if text in self.seen_ids and text not in self.records:
                prefix = next(
                    (
                        r.id_prefix
                        for r in self.contract.resources.values()
                        if r.id_prefix and text.startswith(r.id_prefix)
                    ),
                    "",
                )
                path_params[name] = prefix + "0" * max(len(text) - len(prefix), 8)
                replaced.append(name)
        if replaced:
            with self._lock:
                self.spared += 1
        return replaced

    def observe_exchange(self, ex: Any, base_url: str, source: str) -> None:
        """From our own client (`http.Exchange`)."""
        if ex.op is None:
            return
        from urllib.parse import unquote

        path = unquote(ex.url.split("?", 1)[0].removeprefix(base_url))
        m = ex.op.regex.fullmatch(path)
        self.seen(ex.op, ex.method, ex.status, ex.content, ex.identity, m.groupdict() if m else {}, source)

    # -- the cleanup ---------------------------------------------------------------------------
    def _depth(self, name: str, seen: frozenset[str] = frozenset()) -> int:
        res = self.contract.resources.get(name)
        if res is None or name in seen:
            return 0
        parents = set(res.belongs_to.values())
        if res.parent:
            parents.add(res.parent.name)
        return 1 + max((self._depth(p, seen | {name}) for p in parents), default=0)

    def _delete_op(self, res: Resource, rec: Tracked) -> Operation | None:
        """The collection's delete operation; else `DELETE <the path that created it>/{id}` (an API
        key created by `POST /auth/api-keys` is revoked by `DELETE /auth/api-keys/{id}`)."""
        if res.delete_op is not None:
            return res.delete_op
        for op in self.contract.operations:
            head, _, last = op.path.rpartition("/")
            if op.method == "delete" and rec.made_at and head == rec.made_at and last.startswith("{"):
                return op
        return None

    def _path(self, op: Operation, rec: Tracked) -> dict[str, Any] | None:
        names = [p.name for p in op.path_params]
        if not names:
            return None
        path: dict[str, Any] = {names[-1]: rec.id}
        parent = op.resource.parent if op.resource is not None else None
        for name in names[:-1]:
            if parent is not None and parent.param == name and parent.field in rec.data:
                path[name] = rec.data[parent.field]
            else:
                return None
        return path

    def pending(self) -> list[Tracked]:
        order = {rid: i for i, rid in enumerate(self.records)}
        todo = [r for r in self.records.values() if not r.deleted]
        # children before parents; within a collection, newest first
        return sorted(todo, key=lambda r: (-self._depth(r.collection), -order[r.id]))

    def cleanup(self, client: Client, abort: Callable[[], bool] = lambda: False) -> None:
        """Delete every record still there, by the identity that created it (`abort`: a second
        signal, stop now)."""
        retry: list[Tracked] = []
        for attempt in range(2):
            batch = self.pending() if attempt == 0 else retry
            retry = []
            for rec in batch:
                if abort():
                    rec.left = "the cleanup was interrupted (a second signal)"
                    continue
                res = self.contract.resources[rec.collection]
                op = self._delete_op(res, rec)
                if op is None:
                    rec.left = f"the spec has no operation that deletes {rec.collection}"
                    continue
                path = self._path(op, rec)
                if path is None:
                    rec.left = f"{op.label} needs path parameters the record does not carry"
                    continue
                as_ = rec.owner if rec.owner and client.tokens.get(rec.owner) else "token"
                try:
                    ex = client.call(op, as_=as_, path=path)
                except (httpx.HTTPError, LookupError) as exc:
                    rec.left = f"{op.label} failed: {exc!r}"
                    continue
                if 200 <= ex.status < 300 or ex.status in (404, 410):
                    rec.deleted, rec.left = True, None  # 404: already gone (deleted with its parent)
                else:
                    rec.left = f"{op.label} answered {ex.status}"
                    if ex.status in (409, 423, 429) and attempt == 0:
                        retry.append(rec)
            if not retry:
                break
            client.budget.sleep(2.0)  # a record still settling (e.g. provisioning) may be deletable now

    # -- what to say ---------------------------------------------------------------------------
    @property
    def created(self) -> int:
        return len(self.records)

    @property
    def deleted(self) -> int:
        return sum(1 for r in self.records.values() if r.deleted)

    def left(self) -> list[Tracked]:
        return [r for r in self.records.values() if not r.deleted]

    def summary(self, kept: bool = False) -> str:
        left = self.left()
        line = f"created {self.created}, deleted {self.deleted}, left {len(left)}"
        if not left:
            return line
        if kept:
            return line + " (--keep-resources)"
        why = Counter((r.collection, r.left or "not deleted") for r in left)
        return line + " (" + "; ".join(f"{n} {c}: {w}" for (c, w), n in sorted(why.items())) + ")"
