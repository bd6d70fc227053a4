"""Create records for the domain checks, from the spec alone.

Request bodies come from the operation's documented example (else from its schema); a `name`
and any `x-resources.<r>.unique` field get a per-run suffix; a body field that refers to another
collection (its example carries that collection's id prefix, or it is called `<resource>_id`)
and a parent path parameter (`x-resource.parent`) are satisfied by creating that record first.
Everything created is deleted again at the end, children first.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from contract import MISSING, Contract, Operation, Resource, body_for

from .http import Client, Exchange


class CannotCreate(Exception):
    """The spec gives no way to create this record here (reported as a skip, not a violation)."""

    def __init__(self, reason: str, exchange: Exchange | None = None) -> None:
        super().__init__(reason)
        self.reason, self.exchange = reason, exchange


@dataclass
class Created:
    resource: Resource
    id: str
    data: dict[str, Any]
    sent: dict[str, Any]  # the body that created it
    parent_path: dict[str, Any]  # path parameters of its collection (the parent's id), if any
    exchange: Exchange
    deleted: bool = False
    owner: str = "token"  # which token created it (and so deletes it)

    @property
    def path(self) -> dict[str, Any]:
        """Path parameters addressing this record through its get operation."""
        op = self.resource.get_op
        names = [p.name for p in op.path_params] if op else ["id"]
        return {names[-1]: self.id} if names else {}


_IDENTIFYING = re.compile(r"(^|_)(name|slug|domain|email|hostname|host|title|subdomain|username)$")


def singular(name: str) -> str:
    return name[:-1] if name.endswith("s") else name


@dataclass
class Factory:
    contract: Contract
    client: Client
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    created: list[Created] = field(default_factory=list)
    shared: dict[str, Created] = field(default_factory=dict)  # records other bodies refer to
    counter: int = 0
    settle_timeout: float = 30.0

    def unique(self, value: str, max_length: int | None = None, schema: dict[str, Any] | None = None) -> str:
        """`value` made unique to this run, in a form its schema still accepts (a domain gets a
        new first label, an email a `+tag`, a name a suffix joined by `-`, or by `_` when the value
        itself is joined so)."""
        self.counter += 1
        tag = f"cf{self.tag}{self.counter}"
        schema = schema or {}
        limit = max_length or schema.get("maxLength")
        pattern = schema.get("pattern")
        local, at, domain = value.partition("@")
        candidates = [f"{local}+{tag}@{domain}"] if at else []
        if "." in value and not at:
            candidates.append(f"{tag}-{value}")
        joined = [f"{value}-{tag}", f"{value}_{tag}"]
        if "_" in value and "-" not in value:  # `production_crm`: a backend may allow no `-` in it
            joined.reverse()
        candidates += [*joined, f"{tag}{value}", f"{value}{tag}"]
        for candidate in candidates:
            if limit is not None and len(candidate) > int(limit):
                room = int(limit) - (len(candidate) - len(value))
                if room < 1:
                    continue
                candidate = candidate.replace(value, value[:room], 1)
            if pattern is None or re.search(pattern, candidate):
                return candidate
        return value

    def creatable(self, res: Resource) -> bool:
        return res.create_op is not None

    def body(
        self,
        op: Operation,
        res: Resource | None = None,
        depth: int = 0,
        as_: str = "token",
        everything: bool = False,
    ) -> Any:
        """A request body for `op`, made unique and with its references created. A real backend
        may hold names, slugs, domains, database names or emails unique: each gets a value of
        this run's own (`everything`: every free string, after a 409)."""
        body = body_for(op)
        if not isinstance(body, dict):
            return body
        props = (op.body_schema or {}).get("properties") or {}
        unique_fields = {"name", *(res.unique if res else [])}
        for key, value in body.items():
            schema = props.get(key) or {}
            if not isinstance(value, str) or schema.get("enum") or key.endswith("_id"):
                continue
            if key in unique_fields or everything or _IDENTIFYING.search(key):
                body[key] = self.unique(value, schema.get("maxLength"), schema)
        for key, value in list(body.items()):
            target = self._referenced(key, value)
            if target is not None and target is not res and depth < 3:
                ref = self.shared.get(f"{as_}:{target.name}")
                if ref is None or ref.deleted:
                    ref = self.shared[f"{as_}:{target.name}"] = self.create(target, depth=depth + 1, as_=as_)
                body[key] = ref.id
        return body

    def _referenced(self, key: str, value: Any) -> Resource | None:
        if not isinstance(value, str):
            return None
        for res in self.contract.resources.values():
            if not self.creatable(res) or res.get_op is None:
                continue
            prefix = res.id_prefix
            if key == f"{singular(res.name)}_id" or (
                prefix and key.endswith("_id") and value.startswith(prefix)
            ):
                return res
        return None

    def create(
        self, res: Resource, depth: int = 0, as_: str = "token", parent: Created | None = None
    ) -> Created:
        op = res.create_op
        if op is None:
            raise CannotCreate(f"the spec has no operation that creates {res.name}")
        path: dict[str, Any] = {}
        link = res.parent
        if op.path_params:
            if link is None or depth > 3:
                raise CannotCreate(f"{op.label} needs path parameters the spec does not tie to a parent")
            parent_res = self.contract.resources.get(link.name)
            if parent_res is None:
                raise CannotCreate(f"{res.name}: unknown parent {link.name}")
            if parent is None:
                parent = self.create(parent_res, depth=depth + 1, as_=as_)
            path = {link.param: parent.id}
        body = self.body(op, res, depth, as_=as_)
        ex = self.client.call(op, as_=as_, path=path, body=body)
        for attempt in range(2):  # a refused fixture is retried before a check is skipped
            if 200 <= ex.status < 300 or ex.status not in (400, 409, 422):
                break
            if parent is not None and attempt == 0:
                self.settle(parent, self.settle_timeout, changed=True)  # e.g. a server still provisioning
            body = self.body(op, res, depth, as_=as_, everything=True)
            ex = self.client.call(op, as_=as_, path=path, body=body)
        if not 200 <= ex.status < 300:
            raise CannotCreate(
                f"{op.label} with the spec's example body answered {ex.status} "
                f"(retried with other values): {ex.content[:160].decode('utf-8', 'replace')}",
                ex,
            )
        data = self.extract(op, ex)
        if not isinstance(data, dict) or not isinstance(data.get("id"), (str, int)):
            raise CannotCreate(f"{op.label} answered {ex.status} without an id in the body", ex)
        sent = body if isinstance(body, dict) else {}
        created = Created(res, str(data["id"]), data, sent, path, ex, owner=as_)
        self.created.append(created)
        return created

    def extract(self, op: Operation, ex: Exchange) -> Any:
        """The record inside a single-envelope response."""
        body = ex.json()
        if body is MISSING:
            return MISSING
        tpl = self.contract.template_for(op, ex.status)
        if tpl is None:
            return body
        data = tpl.extract(body, "data")
        return body if data is MISSING else data

    def items(self, op: Operation, ex: Exchange) -> list[Any] | None:
        """The items of a list response (None when the body is not a list envelope)."""
        body = ex.json()
        if body is MISSING:
            return None
        items = self.contract.listing.extract(body, "items")
        return items if isinstance(items, list) else None

    def get(self, created: Created, as_: str = "token") -> Exchange:
        op = created.resource.get_op
        assert op is not None
        return self.client.call(op, as_=as_, path=created.path)

    def settle(self, created: Created, timeout: float, changed: bool = False) -> dict[str, Any]:
        """Read the record until its status leaves the spec's timed (transient) states; with
        `changed`, also until it leaves the status it was created in (a backend's own interim
        statuses, such as `creating`, are not in the spec). Bounded by `timeout`."""
        res = created.resource
        transient = res.transient_states
        first = created.data.get(res.status_field)
        deadline = time.monotonic() + timeout
        data = created.data
        while True:
            ex = self.get(created) if res.get_op is not None else None
            fresh = self.extract(res.get_op, ex) if ex is not None and res.get_op else MISSING
            if isinstance(fresh, dict):
                data = fresh
            status = data.get(res.status_field)
            interim = first in transient or first not in res.status_enum()  # e.g. a vendor's `creating`
            waiting = status in transient or (changed and first is not None and status == first and interim)
            if ex is None or ex.status != 200 or not waiting or time.monotonic() > deadline:
                return data
            self.client.budget.pause(1.0)

    def delete(self, created: Created, as_: str = "token") -> Exchange | None:
        op = created.resource.delete_op
        if op is None:
            return None
        ex = self.client.call(op, as_=as_, path=created.path)
        if 200 <= ex.status < 300 and as_ == created.owner:
            created.deleted = True
        return ex
