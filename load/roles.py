"""The load suite's view of the one compiled contract (`contract` package): which operation
plays which role in a load (the cheapest read of a bucket, a create and its delete), the
limits with an optional shorter window, and the base URL. Envelopes, buckets, examples and
documented responses are the model's own, not read again here.

No Locust import: the verifier (asyncio + httpx) and the Locust files both use this.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

import contract as model
from contract import Bucket, Contract, Operation, SpecError

ContractError = SpecError  # the spec cannot be used as asked: a usage error


class ApiContract:
    """One API's contract, read for load testing; `window` replaces every documented window."""

    def __init__(self, spec: Contract, window: float | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.window_override = window
        shorter = (lambda b: dataclasses.replace(b, window=float(window))) if window else (lambda b: b)
        self.buckets = {n: shorter(b) for n, b in spec.buckets.items()}
        self.documented_windows = {n: b.window for n, b in spec.buckets.items()}
        self.pagination = spec.pagination
        self.error_code_path = spec.error.locate("code")
        if self.error_code_path is None:
            raise ContractError(f"{self.name}: x-sandbox.envelope.error has no $code")

    @classmethod
    def load(cls, api: str, window: float | None = None) -> ApiContract:
        return cls(model.load(api), window)

    # -- operations ----------------------------------------------------------------------
    def op(self, operation_id: str) -> Operation:
        found = self.spec.by_id(operation_id)
        if found is None:
            raise ContractError(f"{self.name}: no operation {operation_id!r}")
        return found

    def buckets_of(self, op: Operation) -> list[Bucket]:
        return [self.buckets[b.name] for b in op.buckets]

    @staticmethod
    def path_params(op: Operation) -> list[str]:
        return [p.name for p in op.path_params]

    def path(self, op: Operation, **params: str) -> str:
        out = op.path
        for name in self.path_params(op):
            out = out.replace("{" + name + "}", str(params[name]))
        return out

    def read_op_for(self, bucket: str) -> Operation | None:
        """The cheapest token-authenticated read that counts in `bucket` only: a GET with no
        path or required parameters, preferring a generic list."""
        found = [
            op
            for op in self.spec.operations
            if op.method == "get"
            and op.rate_buckets == (bucket,)
            and not op.public
            and not any(p.required or p.location == "path" for p in op.params)
        ]
        found.sort(key=lambda op: ((op.resource.op if op.resource else None) != "list", op.path.count("/")))
        return found[0] if found else None

    def write_pair_for(self, bucket: str) -> tuple[Operation, Operation | None] | None:
        """A create (POST to a collection, no path parameter) counting in `bucket` and the
        DELETE of what it creates (`<path>/{id}`) when the spec has one."""
        creates = [
            op
            for op in self.spec.operations
            if op.method == "post"
            and bucket in op.rate_buckets
            and not op.public
            and not op.path_params
            and op.success_status == 201
        ]
        pairs = []
        for create in creates:
            delete = next(
                (
                    op
                    for op in self.spec.operations
                    if op.method == "delete"
                    and bucket in op.rate_buckets
                    and len(op.path_params) == 1
                    and op.path == f"{create.path}/{{{op.path_params[0].name}}}"
                ),
                None,
            )
            generic = create.resource is not None and create.resource.op == "create"
            pairs.append(((delete is None, not generic, create.path.count("/")), (create, delete)))
        pairs.sort(key=lambda p: p[0])
        return pairs[0][1] if pairs else None

    # -- bodies ----------------------------------------------------------------------------
    def new_body(self, op: Operation, label: str) -> dict[str, Any]:
        """The operation's example body (`contract.body_for`) with a unique `name` when the
        request schema has one."""
        body = model.body_for(op)
        body = body if isinstance(body, dict) else {}
        if "name" in (op.body_schema or {}).get("properties", {}):
            body["name"] = label
        return body

    # -- responses: the model's envelopes -----------------------------------------------------
    def data(self, body: Any) -> Any:
        return self.spec.data(body)

    def items(self, body: Any) -> list[Any]:
        return self.spec.items(body)

    def total(self, body: Any) -> int | None:
        return self.spec.total(body)

    def error_code(self, body: Any) -> str | None:
        code = self.spec.error_code(body)
        return code if isinstance(code, str) else None

    # -- URLs -------------------------------------------------------------------------------
    def base_url(self, url: str) -> str:
        """The API's base URL. A URL with a path is used as given (`.../nurosentrix/api/v1`,
        or a vendor's own base URL); a bare origin (`http://127.0.0.1:8080`) is taken as a
        sandbox and gets the API's mount path appended."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ContractError(f"not an http(s) URL: {url!r}")
        if parts.path in ("", "/"):
            return f"{parts.scheme}://{parts.netloc}{self.spec.base_path}"
        return url.rstrip("/")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
