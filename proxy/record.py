"""`--record FILE`: what passed through the proxy, as a seed file (`serve --seed FILE`).

The records seen in successful responses of the spec's resource operations (`x-resource`: get,
list, create, update; a delete forgets the record), per collection, grouped per credential: each
bearer token (or session cookie) seen becomes an account `recorded-N` with a fresh sandbox token
named in the file (test mode, or live when the credential carried the API's live prefix); the
credential itself is never kept, not even hashed on disk. Ids are kept, so links between records
(`server_id`, a parent's id) hold; a child seen under its parent's path gets the parent's field.
Secrets, passwords and one-time values (fields named so, or `writeOnly` in the schema) are dropped.
Collections are written parents first, so `--seed` can check every link."""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from typing import Any

import yaml

from contract import Contract, Operation, Resource
from judge.exchange import Exchange

SECRET_FIELD = re.compile(r"(password|secret|token|private_key|otp|one_time|passcode)", re.IGNORECASE)


class Recorder:
    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._accounts: dict[str, tuple[str, str]] = {}  # sha256(credential) -> (account, mode)
        # (account, collection) -> id -> public record, in the order first seen
        self.records: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self._by_op: dict[str, tuple[Resource, str]] = {}
        for res in contract.resources.values():
            for kind in ("list", "get", "create", "update", "delete"):
                op = getattr(res, f"{kind}_op")
                if op is not None:
                    self._by_op[op.operation_id] = (res, kind)

    def _owner(self, ex: Exchange) -> tuple[str, str] | None:
        scheme, _, value = ex.headers.get("authorization", "").partition(" ")
        credential = value.strip() if scheme.lower() == "bearer" else ""
        if not credential and self.contract.auth_cookie:
            credential = ex.cookies.get(self.contract.auth_cookie, "")
        if not credential:
            return None
        digest = hashlib.sha256(credential.encode()).hexdigest()
        if digest not in self._accounts:
            live = self.contract.token_prefixes.get("live")
            test = self.contract.token_prefixes.get("test", "")
            # the longer prefix decides (nxs_test_ also starts with nexos' live prefix nxs_)
            mode = (
                "live" if live and credential.startswith(live) and not credential.startswith(test) else "test"
            )
            self._accounts[digest] = (f"recorded-{len(self._accounts) + 1}", mode)
        return self._accounts[digest]

    def observe(self, ex: Exchange, status: int, body: Any) -> None:
        op = ex.op
        if op is None or not 200 <= status < 300 or op.operation_id not in self._by_op:
            return
        owner = self._owner(ex)
        if owner is None:
            return
        res, kind = self._by_op[op.operation_id]
        table = self.records.setdefault((owner[0], res.name), {})
        if kind == "delete":
            rid = _last_param(op, ex)
            if rid is not None:
                table.pop(rid, None)
            return
        if kind == "list":
            found = self.contract.items(body)
        else:
            one = self.contract.data(body) if self.contract.template_for(op, status) is not None else body
            found = [one]
        parent = op.resource.parent if op.resource is not None else None
        for record in found:
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                continue
            kept = self._clean(res, record)
            if parent is not None and parent.field not in kept and ex.path_params:
                value = ex.path_params.get(parent.param)
                if value is not None:
                    kept[parent.field] = value
            table[record["id"]] = kept

    def _clean(self, res: Resource, record: dict[str, Any]) -> dict[str, Any]:
        props = res.schema.get("properties") or {}
        return {
            k: v
            for k, v in record.items()
            if not SECRET_FIELD.search(k) and not (props.get(k) or {}).get("writeOnly")
        }

    def seed(self, token_value: Any = None) -> dict[str, Any]:
        """The seed: a fresh sandbox token per recorded account, then the records, parents first."""
        new_token = token_value or (lambda prefix: prefix + secrets.token_urlsafe(24).replace("-", "x"))
        tokens = []
        for account, mode in self._accounts.values():
            prefix = self.contract.token_prefixes.get(mode, "")
            tokens.append(
                {
                    "api": self.contract.name,
                    "token": new_token(prefix),
                    "account": account,
                    "mode": mode,
                    "name": "recorded",
                }
            )
        modes = dict(self._accounts.values())
        resources = []
        for collection in _parents_first(self.contract):
            for (account, name), rows in self.records.items():
                if name != collection:
                    continue
                for record in rows.values():
                    resources.append(
                        {
                            "api": self.contract.name,
                            "collection": name,
                            "account": account,
                            "mode": modes.get(account, "test"),
                            "data": record,
                        }
                    )
        return {"tokens": tokens, "resources": resources}

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.seed(), sort_keys=False, allow_unicode=True)
        path.write_text(
            "# Recorded by `mock-server proxy --record`: serve it with `mock-server serve --seed FILE`.\n"
            "# Each credential seen became an account with the fresh token below (never the original).\n"
            + text,
            encoding="utf-8",
        )


def _last_param(op: Operation, ex: Exchange) -> str | None:
    params = [p.name for p in op.path_params]
    return (ex.path_params or {}).get(params[-1]) if params else None


def _parents_first(contract: Contract) -> list[str]:
    order: list[str] = []

    def visit(name: str, seen: frozenset[str]) -> None:
        if name in order or name in seen or name not in contract.resources:
            return
        res = contract.resources[name]
        parents = list(res.belongs_to.values()) + ([res.parent.name] if res.parent else [])
        for parent in parents:
            visit(parent, seen | {name})
        order.append(name)

    for name in contract.resources:
        visit(name, frozenset())
    return order
