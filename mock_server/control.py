"""The control API under `/_mock` (documented in `control_api.yaml`): tokens, reset, request
log, clock. Not part of any vendor contract."""

from __future__ import annotations

import hmac
import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from contract import HTTP_METHODS
from judge.schema import schema_problems

from . import control_routes, webui
from .clock import iso
from .errors import ApiError, StorageError
from .faults import FaultError
from .grading import route as grading
from .requestlog import request_page
from .sandbox import Sandbox
from .tokens import MODES
from .users import save_user


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str) -> JSONResponse:
    code = {400: "VALIDATION_ERROR", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "ERROR")
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise ControlError(400, "body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ControlError(400, "body must be a JSON object")
    return value


UNAUTHORIZED_HINT = (
    "The control API needs the admin token: send `Authorization: Bearer TOKEN` with the value the "
    "sandbox was started with (serve --admin-token, or $SANDBOX_ADMIN_TOKEN); the token CLI reads "
    "--admin-token or $SANDBOX_ADMIN_TOKEN"
)


Params = dict[str, str]  # a route's path parameters
Body = dict[str, Any]  # its JSON body, valid against the documented schema ({} when it has none)
Handler = Callable[[Request, Params, Body], Awaitable[Response]]


class ControlApi:
    """Served from `control_api.yaml` (`control_routes`): each operationId's handler is the
    method of its snake_case name; one missing, or one too many, is a start-up error."""

    def __init__(self, sandbox: Sandbox, admin_token: str | None = None) -> None:
        self.sandbox = sandbox
        self.admin_token = admin_token
        named = {r.operation_id: getattr(self, _snake(r.operation_id), None) for r in control_routes.routes()}
        self.handlers: dict[str, Handler] = {k: v for k, v in named.items() if v is not None}
        control_routes.check_handlers(self.handlers)

    def _authorised(self, request: Request) -> bool:
        if self.admin_token is None:
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.admin_token.encode()
        )

    async def handle(self, request: Request, subpath: str) -> Response:
        if webui.is_page(subpath):  # pages hold no state: their data comes from the routes below
            return webui.serve(self.sandbox, request, subpath)
        if not self._authorised(request):
            if subpath.strip("/") == "health" and request.method in ("GET", "HEAD"):
                return JSONResponse({"status": "ok"})  # public, for wait loops: it reveals nothing
            return JSONResponse(
                {"error": {"code": "UNAUTHORIZED", "message": UNAUTHORIZED_HINT}},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="_mock"'},
            )
        try:
            return await self._dispatch(request, subpath.strip("/"), request.method)
        except ControlError as err:
            return _error(err.status, err.message)
        except StorageError as err:  # nothing was saved (the store undid it)
            return JSONResponse(
                {"error": {"code": err.code, "message": err.message}},
                status_code=err.status,
                headers=err.headers,
            )

    async def _dispatch(self, request: Request, path: str, method: str) -> Response:
        route, params, _ = control_routes.match(method, path)
        if route is None:
            if method.lower() not in HTTP_METHODS:
                raise ControlError(405, "method not allowed")
            raise ControlError(404, f"no control endpoint {method} /_mock/{path}")
        body: dict[str, Any] = {}
        if route.body_schema is not None:
            body = await _json(request)
            problems = schema_problems(body, route.body_schema)
            if problems:
                raise ControlError(400, "; ".join(f"{p.field}: {p.reason}" for p in problems))
        return await self.handlers[route.operation_id](request, params, body)

    # -- the operations of control_api.yaml, by operationId --------------------------------------
    async def health(self, request: Request, params: Params, body: Body) -> Response:
        sb = self.sandbox
        return JSONResponse(
            {
                "status": "ok",
                "apis": {n: s.base_path for n, s in sb.specs.items()},
                "now": sb.clock.isoformat(),
                "pid": os.getpid(),
            }
        )

    async def mint_token(self, request: Request, params: Params, body: Body) -> Response:
        return self._mint(body)

    async def create_user(self, request: Request, params: Params, body: Body) -> Response:
        return self._user(body)

    async def list_tokens(self, request: Request, params: Params, body: Body) -> Response:
        return self._tokens(request)

    async def revoke_token(self, request: Request, params: Params, body: Body) -> Response:
        sb = self.sandbox
        rid = sb.tokens.token_id(params["token"])
        if not sb.tokens.revoke(rid):
            raise ControlError(404, "no such token")
        sb.limiter.forget(rid)  # its rate-limit logs can never matter again
        return Response(status_code=204)

    async def reset(self, request: Request, params: Params, body: Body) -> Response:
        sb = self.sandbox
        api = body.get("api") or request.query_params.get("api")
        if api is not None and api not in sb.specs:
            raise ControlError(400, f"unknown api {api!r}")
        sb.reset(api, tokens=body.get("tokens") is True)
        if body.get("requests") is True:
            sb.requests.clear()
        return JSONResponse(
            {
                "reset": api or "all",
                "tokens": body.get("tokens") is True,
                "requests": body.get("requests") is True,
            }
        )

    async def create_fault(self, request: Request, params: Params, body: Body) -> Response:
        try:
            return JSONResponse(self.sandbox.faults.create(body), status_code=201)
        except FaultError as exc:
            raise ControlError(400, str(exc)) from None

    async def list_faults(self, request: Request, params: Params, body: Body) -> Response:
        return JSONResponse({"faults": self.sandbox.faults.list(request.query_params.get("api"))})

    async def clear_faults(self, request: Request, params: Params, body: Body) -> Response:
        return JSONResponse({"removed": self.sandbox.faults.clear(request.query_params.get("api"))})

    async def delete_fault(self, request: Request, params: Params, body: Body) -> Response:
        if not self.sandbox.faults.delete(params["id"]):
            raise ControlError(404, "no such fault rule")
        return Response(status_code=204)

    async def grade_client(self, request: Request, params: Params, body: Body) -> Response:
        return grading.handle(self.sandbox, request)

    async def list_requests(self, request: Request, params: Params, body: Body) -> Response:
        return JSONResponse(request_page(self.sandbox.requests, request.query_params, _request_filter, _int))

    async def list_collections(self, request: Request, params: Params, body: Body) -> Response:
        return JSONResponse(self._collections(request.query_params.get("api")))

    async def list_records(self, request: Request, params: Params, body: Body) -> Response:
        return self._records(request, [params["api"], params["collection"]])

    async def get_record(self, request: Request, params: Params, body: Body) -> Response:
        return self._records(request, [params["api"], params["collection"], params["id"]])

    async def list_settling(self, request: Request, params: Params, body: Body) -> Response:
        return JSONResponse(self._settling(request.query_params.get("api")))

    async def get_clock(self, request: Request, params: Params, body: Body) -> Response:
        sb = self.sandbox
        return JSONResponse({"now": sb.clock.isoformat(), "epoch": sb.clock.now()})

    async def advance_clock(self, request: Request, params: Params, body: Body) -> Response:
        sb = self.sandbox
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 10**8:
            raise ControlError(400, "seconds must be a number from 0 to 100000000")
        sb.clock.advance(float(seconds))
        return JSONResponse({"now": sb.clock.isoformat(), "epoch": sb.clock.now()})

    async def get_spec(self, request: Request, params: Params, body: Body) -> Response:
        return self._spec(request, params["api"])

    def _tokens(self, request: Request) -> Response:
        """A page of tokens (masked): `limit` (1-1000, default 100) from `offset` (default 0)."""
        q = request.query_params
        api = q.get("api")
        limit = _bounded(q.get("limit"), "limit", 1, TOKEN_PAGE_MAX, TOKEN_PAGE_DEFAULT)
        offset = _bounded(q.get("offset"), "offset", 0, 10**9, 0)
        tokens, total = self.sandbox.tokens.page(api, offset, limit)
        following = offset + len(tokens)
        return JSONResponse(
            {
                "tokens": tokens,
                "total": total,
                "limit": limit,
                "offset": offset,
                "next_offset": following if following < total else None,
            }
        )

    def _mint(self, body: dict[str, Any]) -> Response:
        sb = self.sandbox
        api = body.get("api")
        if api not in sb.specs:
            raise ControlError(400, f"api must be one of {', '.join(sb.specs)}")
        mode = body.get("mode", "test")
        if mode not in MODES:
            raise ControlError(400, "mode must be test or live")
        scopes = body.get("scopes")
        if scopes is not None and not (isinstance(scopes, list) and all(isinstance(s, str) for s in scopes)):
            raise ControlError(400, "scopes must be a list of strings")
        account = body.get("account", "default")
        name = body.get("name")
        value = body.get("token")
        for label, v in (("account", account), ("name", name), ("token", value)):
            if v is not None and not (isinstance(v, str) and 0 < len(v) <= 256):
                raise ControlError(400, f"{label} must be a string of 1 to 256 characters")
        try:
            token, record = sb.mint(api, scopes, mode, account, name, value)
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        shown = {k: v for k, v in record.items() if k != "hash"}
        return JSONResponse({"token": token, **shown}, status_code=201)

    def _user(self, body: dict[str, Any]) -> Response:
        """A user who can log in (Nurosentrix email/password; Nexos GitHub login), as a seed file's
        `users:` entry: for a client's (or the conformance suite's) login flow."""
        sb = self.sandbox
        if body.get("api") not in sb.specs:
            raise ControlError(400, f"api must be one of {', '.join(sb.specs)}")
        if body.get("mode", "test") not in MODES:
            raise ControlError(400, "mode must be test or live")
        for key in ("account", "email", "login", "name", "password"):
            v = body.get(key)
            if v is not None and not (isinstance(v, str) and 0 < len(v) <= 256):
                raise ControlError(400, f"{key} must be a string of 1 to 256 characters")
        if not body.get("email") and not body.get("login"):
            raise ControlError(400, "give an email (with a password) or a login")
        fields = ("api", "account", "mode", "email", "login", "name", "password")
        try:
            record = save_user(sb.store, sb.ids, {k: body[k] for k in fields if k in body})
        except ValueError as exc:
            raise ControlError(400, str(exc)) from None
        shown = ("id", "api", "account", "mode", "email", "login", "name")
        return JSONResponse({k: record.get(k) for k in shown}, status_code=201)

    def _collections(self, api: str | None) -> dict[str, Any]:
        """Per API: each collection's record count, and the (account, mode) pairs that own any."""
        sb = self.sandbox
        if api is not None and api not in sb.specs:
            raise ControlError(404, f"unknown api {api!r}")
        out: dict[str, Any] = {}
        for name in [api] if api else list(sb.specs):
            res = sb.resources[name]
            owners: dict[tuple[str, str], int] = {}
            counts = {}
            with sb.store.reading():
                for coll in sb.specs[name].resources:
                    n = 0
                    for r in sb.store.scan(res.table(coll)):
                        n += 1
                        key = (str(r.get("_account")), str(r.get("_mode")))
                        owners[key] = owners.get(key, 0) + 1
                    counts[coll] = n
            out[name] = {
                "collections": counts,
                "owners": [{"account": a, "mode": m, "records": n} for (a, m), n in sorted(owners.items())],
            }
        return {"apis": out}

    def _records(self, request: Request, parts: list[str]) -> Response:
        """`resources/{api}/{collection}[/{id}]?account=&mode=`: records as the API shows them."""
        sb = self.sandbox
        if len(parts) not in (2, 3) or parts[0] not in sb.specs:
            raise ControlError(404, "no such api")
        api, coll = parts[0], parts[1]
        if coll not in sb.specs[api].resources:
            raise ControlError(404, f"{api} has no collection {coll!r}")
        q = request.query_params
        owner = {"_account": q.get("account", "default"), "_mode": q.get("mode", "test")}
        res = sb.resources[api]
        if len(parts) == 3:
            try:
                return JSONResponse(res.public(coll, res.get(coll, owner, parts[2])))
            except ApiError:
                raise ControlError(404, f"no {coll} {parts[2]!r} in account {owner['_account']}") from None
        records = res.list(coll, owner)
        limit = _int(q.get("limit"), 100)
        return JSONResponse(
            {"total": len(records), "items": [res.public(coll, r) for r in records[-limit:]][::-1]}
        )

    def _settling(self, api: str | None) -> dict[str, Any]:
        sb = self.sandbox
        now = sb.clock.now()
        rows = []
        for name in [api] if api in sb.specs else list(sb.specs):
            for coll in sb.specs[name].resources:
                for p in sb.resources[name].pending(coll):
                    rows.append(
                        {
                            **p,
                            "api": name,
                            "collection": coll,
                            "due": iso(p["due"]),
                            "in_seconds": max(0, round(p["due"] - now, 3)),
                        }
                    )
        return {"now": iso(now), "settling": sorted(rows, key=lambda r: r["in_seconds"])}

    def _spec(self, request: Request, name: str) -> Response:
        name = name.removesuffix(".json")
        spec = self.sandbox.specs.get(name)
        if spec is None:
            raise ControlError(404, f"unknown api {name!r}")
        import yaml

        from contract import available_specs

        doc = yaml.safe_load(available_specs()[name].read_text())
        base = str(request.base_url).rstrip("/")
        doc["servers"] = [{"url": f"{base}{spec.base_path}", "description": "sandbox"}]
        return JSONResponse(doc)


def _request_filter(query: Any) -> Any:
    """`/_mock/requests` filters: api, status (401, or a class: 4xx), token (masked or tok_ id),
    method, path (a prefix), request_id."""
    api, status, token = query.get("api"), query.get("status"), query.get("token")
    method, prefix, rid = query.get("method"), query.get("path"), query.get("request_id")
    cls = status[0] if status and len(status) == 3 and status.endswith("xx") else None

    def keep(r: dict[str, Any]) -> bool:
        if api and r["api"] != api:
            return False
        if status and (str(r["status"])[0] != cls if cls else str(r["status"]) != status):
            return False
        if token and token not in (r.get("token"), r.get("token_id")):
            return False
        if method and r["method"] != method.upper():
            return False
        if rid and r["request_id"] != rid:
            return False
        return not (prefix and not r["path"].startswith(prefix))

    return keep


TOKEN_PAGE_DEFAULT, TOKEN_PAGE_MAX = 100, 1000


def _bounded(raw: str | None, name: str, low: int, high: int, default: int) -> int:
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 10 and low <= int(raw) <= high):
        raise ControlError(400, f"{name} must be an integer from {low} to {high}")
    return int(raw)


def _snake(name: str) -> str:
    """`mintToken` -> `mint_token`."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _int(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) <= 500 else default
