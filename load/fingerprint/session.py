"""The requests of one probe over HTTP: the probed operation with each token, and one request
of each peer operation (to see which share its limit). Only what can be undone is sent: reads
without path parameters, creates whose records it deletes afterwards (with the delete of the
same path + `/{id}`), and those deletes, on records it created itself."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from contract import Operation

from ..roles import ApiContract
from .headers import retry_after
from .model import Obs
from .probe import Budget


class UsageError(Exception):
    pass


def delete_of(c: ApiContract, create: Operation) -> Operation | None:
    """The DELETE of what `create` (a POST to a collection) makes: `<path>/{id}`."""
    return next(
        (
            op
            for op in c.spec.operations
            if op.method == "delete"
            and len(op.path_params) == 1
            and op.path == f"{create.path}/{{{op.path_params[0].name}}}"
        ),
        None,
    )


@dataclass
class Target:
    """An operation to probe; a create comes with the delete that undoes it."""

    op: Operation
    delete: Operation | None = None

    @property
    def ids(self) -> list[str]:
        return [self.op.operation_id] + ([self.delete.operation_id] if self.delete else [])


def target(c: ApiContract, op: Operation) -> Target | None:
    """`op` as a safe probe, or None: a read without path parameters, a create with a delete."""
    if op.method == "get" and not c.path_params(op):
        return Target(op)
    if op.method == "post" and not c.path_params(op):
        delete = delete_of(c, op)
        return Target(op, delete) if delete is not None else None
    return None


def pick(c: ApiContract, wanted: list[str] | None) -> list[Target]:
    """The operations to probe: those asked for, else for each bucket its cheapest read or,
    without one, a create with its delete."""
    if wanted:
        found = [(w, target(c, c.op(w))) for w in wanted]
        unsafe = [w for w, t in found if t is None]
        if unsafe:
            raise UsageError(
                "only reads without path parameters and creates with a delete are probed; not "
                + ", ".join(unsafe)
            )
        return [t for _, t in found if t is not None]
    out: dict[str, Target] = {}
    for name in c.buckets:
        read = c.read_op_for(name)
        pair = None if read else c.write_pair_for(name)
        t = Target(read) if read else Target(*pair) if pair and pair[1] is not None else None
        if t is not None:
            out.setdefault(t.op.operation_id, t)
    return list(out.values())


@dataclass
class Session:
    """HTTP clients per token; the records created (token, create op id, record id)."""

    c: ApiContract
    base_url: str
    tokens: dict[str, str]
    targets: list[Target]
    created: list[tuple[str, str, str]] = field(default_factory=list)
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    n: int = 0
    deleted: int = 0

    def __post_init__(self) -> None:
        self.clients = {
            who: httpx.AsyncClient(
                base_url=self.c.base_url(self.base_url) + "/",
                headers={"Authorization": f"Bearer {t}", "Accept": "application/json"},
                timeout=10.0,
                follow_redirects=False,
            )
            for who, t in self.tokens.items()
        }
        self.creates = {t.delete.operation_id: t.op for t in self.targets if t.delete}
        self.deletes = {t.op.operation_id: t.delete for t in self.targets if t.delete}

    async def request(self, op: Operation, who: str) -> Obs:
        """One request of `op` with `who`'s token; status 0 when it cannot be sent safely
        (a delete with no record of ours to delete)."""
        start = time.monotonic()
        cl = self.clients[who]
        rid = None
        try:
            if op.method == "get":
                r = await cl.get(self.c.path(op).lstrip("/"))
            elif op.method == "post":
                self.n += 1
                body = self.c.new_body(op, f"fingerprint-{self.run_id}-{self.n}")
                r = await cl.post(self.c.path(op).lstrip("/"), json=body)
                data = self.c.data(_json(r)) if 200 <= r.status_code < 300 else None
                if isinstance(data, dict) and isinstance(data.get("id"), str):
                    self.created.append((who, op.operation_id, data["id"]))
            else:
                create = self.creates.get(op.operation_id)
                mine = [x for x in self.created if x[0] == who and create and x[1] == create.operation_id]
                if not mine:
                    return Obs(who, start, start, 0, {}, time.time())
                self.created.remove(rec := mine[-1])
                rid = rec
                param = self.c.path_params(op)[0]
                r = await cl.delete(self.c.path(op, **{param: rec[2]}).lstrip("/"))
                if not 200 <= r.status_code < 300 and r.status_code != 404:
                    self.created.append(rec)
        except httpx.HTTPError as exc:
            if rid is not None:
                self.created.append(rid)
            raise Budget(f"{type(exc).__name__}: {exc}") from None
        return Obs(who, start, time.monotonic(), r.status_code, r.headers, time.time())

    async def cleanup(self, sleep: Any, deadline: float) -> list[str]:
        """Delete what the probe created, honouring Retry-After; what is left (ids)."""
        tries = 3 * len(self.created) + 3
        while self.created and tries > 0 and time.monotonic() < deadline:
            tries -= 1
            who, create_id, _ = self.created[-1]
            delete = self.deletes.get(create_id)
            if delete is None:
                break
            o = await self.request(delete, who)
            if o.refused:
                wait = retry_after(o.headers, o.wall)
                await sleep(min(wait if wait is not None else 1.0, max(deadline - time.monotonic(), 0)))
            elif o.accepted or o.status == 404:
                self.deleted += 1
            else:
                break
        return [rid for _, _, rid in self.created]

    async def close(self) -> None:
        for cl in self.clients.values():
            await cl.aclose()


def _json(r: httpx.Response) -> Any:
    try:
        return r.json()
    except ValueError:
        return None
