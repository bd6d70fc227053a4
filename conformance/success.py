"""Success paths: after every family and Schemathesis phase, each operation that never answered
2xx gets one request built to succeed, from the spec alone.

The record it acts on is created first (with its parents) and settled; a body field naming a
collection whose parent is that record's collection (`backup_id` when cloning an instance) gets
a child of *that* record; a signed webhook (`x-signature` on the operation) is signed with the
secret its record carries (or `--webhook-secret`). What still gets no 2xx is listed in every
report as "success path not exercised" — never a violation: a backend may have reasons."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from contract import MISSING, Contract, Operation, Resource, Signature, body_for

from .factory import CannotCreate, Created, Factory
from .results import Results, is_success


def _resource_of(contract: Contract, op: Operation) -> Resource | None:
    """The collection whose record `op` acts on: its own, or the one whose get path prefixes it."""
    for res in contract.resources.values():
        if op in (res.get_op, res.update_op, res.delete_op) or op in res.actions:
            return res
    return None


def _child_for(factory: Factory, res: Resource, obj: Created, key: str) -> Created | None:
    """A record of the collection `key` names (`backup_id` → backups) whose parent is `res`,
    created under `obj`."""
    for child in factory.contract.resources.values():
        parent = child.parent
        if parent and parent.name == res.name and key == f"{child.name.rstrip('s')}_id":
            made = factory.create(child, parent=obj)
            factory.settle(made, factory.settle_timeout, changed=True)
            return made
    return None


def _signed(op: Operation, body: Any, secret: str | None) -> tuple[bytes, dict[str, str]] | None:
    """The raw body and its signature header, when the operation declares `x-signature`."""
    sig = op.signature
    if sig is None or secret is None:
        return None
    raw = json.dumps(body, ensure_ascii=False).encode()
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {sig.header: f"{sig.prefix}{digest}"}


def is_login(op: Operation) -> bool:
    """A public operation taking an email and a password: a login."""
    props = (op.body_schema or {}).get("properties") or {}
    return op.public and {"email", "password"} <= set(props)


def exercise(
    contract: Contract,
    factory: Factory,
    results: Results,
    webhook_secret: str | None = None,
    login: tuple[str, str] | None = None,
) -> list[str]:
    """One request per operation without a 2xx so far; returns what it reached."""
    reached: list[str] = []
    # Records the families shared (a server that instances refer to) may be gone by now:
    # Schemathesis may have deleted them. Start afresh.
    factory.shared.clear()
    for op in contract.operations:
        if results.successes.get(op.label):
            continue
        try:
            if op.signature is not None:
                ex = _webhook(contract, factory, op, op.signature, webhook_secret)
            elif is_login(op):
                if login is None:
                    results.notes.append(f"success path of {op.label}: no credentials (--login-email)")
                    continue
                body = {**(body_for(op) or {}), "email": login[0], "password": login[1]}
                ex = factory.client.call(op, as_=None, body=body)
            elif _linked_from(contract, op):
                ex = _via_link(contract, factory, op) or _request(contract, factory, op, webhook_secret)
            else:
                ex = _request(contract, factory, op, webhook_secret)
        except CannotCreate as exc:
            results.notes.append(f"success path of {op.label}: could not set it up: {exc.reason}")
            continue
        if ex is not None and is_success(ex.status, op.responses):
            reached.append(op.label)  # chained records (a webhook's environment) may unlock more
        elif ex is not None:
            text = ex.content[:160].decode("utf-8", "replace")
            results.notes.append(f"success path of {op.label}: {ex.method} answered {ex.status} {text}")
    if reached and any(not results.successes.get(o.label) for o in contract.operations):
        for op in contract.operations:
            if results.successes.get(op.label) or op.signature is not None:
                continue
            try:
                ex = _request(contract, factory, op, webhook_secret, existing=True)
            except CannotCreate:
                continue
            if ex is not None and 200 <= ex.status < 300:
                reached.append(op.label)
    return reached


def _redirects(op: Operation) -> bool:
    return op.public and op.method == "get" and any(c.startswith("3") for c in op.responses)


def _redirect(contract: Contract, factory: Factory, op: Operation, want: Operation | None = None) -> Any:
    """A public GET documented as a redirect (an OAuth start): call it, then follow its Location
    once when it points at another operation of the spec (the OAuth callback, with its code)."""
    query = {p.name: _example(op, p.name) for p in op.params if p.location == "query" and p.required}
    ex = factory.client.call(op, as_=None, query={k: v for k, v in query.items() if v is not None} or None)
    location = ex.response_headers.get("location") if 300 <= ex.status < 400 else None
    if not location:
        return ex
    target = urlsplit(location)
    base = urlsplit(factory.client.base_url)
    if target.netloc and target.netloc != base.netloc:
        return ex  # off to the vendor (GitHub itself): nothing more of ours to call
    rel = target.path.removeprefix(base.path.rstrip("/"))
    nxt, params, _ = contract.match("get", rel)
    if nxt is not None and nxt is not op and not factory.client.budget.stop.is_set():
        followed = factory.client.call(
            nxt, as_=None, path=params, query=dict(parse_qsl(target.query)) or None
        )
        return followed if nxt is want else ex
    return ex


def _delivered(contract: Contract, factory: Factory, res: Resource, secret: str | None) -> list[Created]:
    """Live records of `res`, a collection no operation creates: the known ones, else those a
    signed delivery (`x-signature`: a push makes an environment) makes now."""

    def live() -> list[Created]:
        known = [c for c in factory.created if c.resource is res and not c.deleted]
        while known and res.get_op is not None and factory.get(known[-1]).status == 404:
            known.pop().deleted = True  # gone meanwhile (a phase deleted its parent): deliver anew
        return known

    for hook in contract.operations:
        if live():
            break
        if hook.signature is not None:
            _webhook(contract, factory, hook, hook.signature, secret)
    return live()


def _request(
    contract: Contract, factory: Factory, op: Operation, secret: str | None = None, existing: bool = False
) -> Any:
    res = _resource_of(contract, op)
    if _redirects(op):
        for source in contract.operations:  # reached by another redirect (an OAuth callback)?
            if source is not op and _redirects(source):
                ex = _redirect(contract, factory, source, want=op)
                if ex is not None and ex.op is op and is_success(ex.status, op.responses):
                    return ex
        return _redirect(contract, factory, op)
    if op.public or (res is None and op.path_params):
        return None
    path: dict[str, Any] = {}
    obj: Created | None = None
    if res is not None and op.path_params:
        known = [c for c in factory.created if c.resource is res and not c.deleted]
        if res.create_op is None and not existing:
            known = _delivered(contract, factory, res, secret)
        if existing or res.create_op is None:
            if not known:
                return None
            obj = known[-1]
        elif _linked_from(contract, res.create_op):  # made through a link (a node, by a join token)
            made = _via_link(contract, factory, res.create_op)
            fresh = [c for c in factory.created if c.resource is res and not c.deleted]
            if made is None or not fresh:
                raise CannotCreate(f"{res.name}: its creating link answered no record")
            obj = fresh[-1]
        else:
            obj = factory.create(res)
        factory.settle(obj, factory.settle_timeout, changed=True)
        path = {op.path_params[0].name: obj.id}
        for p in op.path_params[1:]:
            path[p.name] = _sub_record(factory, op, p.name, path) or "cf0missing"
    body = factory.body(op, res) if op.body_schema is not None else MISSING
    if isinstance(body, dict) and obj is not None and res is not None:
        for key in list(body):
            child = _child_for(factory, res, obj, key) if key.endswith("_id") else None
            if child is not None:
                body[key] = child.id
    kwargs: dict[str, Any] = {"body": body} if body is not MISSING else {}
    return factory.client.call(op, path=path, **kwargs)


def _webhook(
    contract: Contract,
    factory: Factory,
    op: Operation,
    sig: Signature,
    secret: str | None,
    owner: Created | None = None,
) -> Any:
    """A signed delivery for a record of `sig.resource` (`owner`, else a new one) whose
    `sig.match` field names it."""
    res = contract.resources.get(sig.resource)
    if res is None or res.create_op is None:
        return None
    owner = owner or factory.create(res)
    key = secret or owner.data.get(sig.secret_field)
    if not isinstance(key, str):
        return None
    body = body_for(op)
    if not isinstance(body, dict):
        return None
    for field, source in sig.match.items():  # body path → the record's field
        target: Any = body
        *parents, last = str(field).split(".")
        for name in parents:
            target = target.setdefault(name, {}) if isinstance(target, dict) else {}
        if isinstance(target, dict):
            target[last] = owner.data.get(str(source), owner.sent.get(str(source)))
    signed = _signed(op, body, key)
    if signed is None:
        return None
    _raw, headers = signed  # the client serialises the body exactly so
    for p in op.params:  # the other required headers, from their examples (X-GitHub-Event: push)
        if p.location == "header" and p.required and p.name not in headers:
            example = _example(op, p.name)
            if example is not None:
                headers[p.name] = str(example)
    ex = factory.client.call(op, as_=None, body=body, headers=headers)
    if 200 <= ex.status < 300:
        _adopt(contract, factory, ex)
    return ex


def _linked_from(contract: Contract, op: Operation) -> list[tuple[Operation, dict[str, Any]]]:
    """The operations whose success response links to `op` (a join token → the register call)."""
    out = []
    for source in contract.operations:
        for link in source.links().values():
            if link.get("operationId") == op.operation_id and source is not op:
                out.append((source, link))
    return out


def _pointer(body: Any, expression: Any) -> Any:
    """`$response.body#/data/id` read from `body` (MISSING when the expression is another kind)."""
    if not isinstance(expression, str) or not expression.startswith("$response.body#"):
        return MISSING
    value = body
    for part in [p for p in expression.split("#", 1)[1].split("/") if p]:
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _via_link(contract: Contract, factory: Factory, op: Operation) -> Any:
    """Call a source operation whose response links to `op`, then `op` with what the link takes
    from that response (its parameters and request body fields)."""
    for source, link in _linked_from(contract, op):
        if source.path_params or source.public:
            continue  # only sources that need nothing else (a root create, a token issuer)
        src_body = factory.body(source) if source.body_schema is not None else MISSING
        first = factory.client.call(source, **({"body": src_body} if src_body is not MISSING else {}))
        if not 200 <= first.status < 300:
            continue
        got = first.json()
        path = {
            name: value
            for name, expr in (link.get("parameters") or {}).items()
            if (value := _pointer(got, expr)) is not MISSING
        }
        body = body_for(op) if op.body_schema is not None else MISSING
        extra = link.get("requestBody")
        if isinstance(body, dict) and isinstance(extra, dict):
            body.update({k: v for k, e in extra.items() if (v := _pointer(got, e)) is not MISSING})
        kwargs: dict[str, Any] = {"body": body} if body is not MISSING else {}
        ex = factory.client.call(op, as_=None if op.public else "token", path=path, **kwargs)
        if 200 <= ex.status < 300:
            _adopt_record(contract, factory, op, ex)
            return ex
    return None


def _adopt_record(contract: Contract, factory: Factory, op: Operation, ex: Any) -> None:
    """A record the response is (a registered node) becomes a known record."""
    data = factory.extract(op, ex)
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return
    for res in contract.resources.values():
        if res.id_prefix and data["id"].startswith(res.id_prefix) and res.get_op is not None:
            factory.created.append(Created(res, data["id"], data, {}, {}, ex))
            return


def _sub_record(factory: Factory, op: Operation, name: str, path: dict[str, Any]) -> str | None:
    """An id for a nested path parameter (`/projects/{id}/env-vars/{varId}`): made by the POST or
    PUT on the collection path above it, with its example body."""
    collection = op.path.rsplit("/{" + name + "}", 1)[0]
    for maker in factory.contract.operations:
        if maker.path == collection and maker.method in ("post", "put"):
            body = body_for(maker) if maker.body_schema is not None else MISSING
            ex = factory.client.call(maker, path=path, **({"body": body} if body is not MISSING else {}))
            data = factory.extract(maker, ex)
            if 200 <= ex.status < 300 and isinstance(data, dict) and data.get("id") is not None:
                return str(data["id"])
    return None


def _example(op: Operation, name: str) -> Any:
    for raw in op.raw.get("parameters") or []:
        if isinstance(raw, dict) and raw.get("name") == name:
            return raw.get("example", (raw.get("schema") or {}).get("example"))
    return None


def _adopt(contract: Contract, factory: Factory, ex: Any) -> None:
    """Records a response names (`environment_id`, `deployment_id`) become known records, so the
    operations on them can be exercised."""
    body = ex.json()
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        if not (key.endswith("_id") and isinstance(value, str)):
            continue
        for res in contract.resources.values():
            if res.id_prefix and value.startswith(res.id_prefix) and res.get_op is not None:
                got = factory.client.call(res.get_op, path={res.get_op.path_params[0].name: value})
                data = factory.extract(res.get_op, got)
                if 200 <= got.status < 300 and isinstance(data, dict):
                    factory.created.append(Created(res, value, data, {}, {}, got))
