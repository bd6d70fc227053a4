"""`GET /_mock/grade?api=NAME[&token=T][&since=TIME]`: the client rules' verdicts as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from ..clock import iso
from ..tokens import TABLE, token_hash
from . import grade
from .rules import FAIL

if TYPE_CHECKING:
    from starlette.requests import Request

    from ..sandbox import Sandbox


def _bad(message: str) -> Response:
    return JSONResponse({"error": {"code": "VALIDATION_ERROR", "message": message}}, status_code=400)


def _since(raw: str | None) -> float | None:
    """Epoch seconds or RFC 3339, between years 1 and 9999 (ValueError otherwise)."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    if not -62_000_000_000 < value < 253_000_000_000:  # also NaN and infinities
        raise ValueError(raw)
    return value


def handle(sb: Sandbox, request: Request) -> Response:
    q = request.query_params
    api, token = q.get("api"), q.get("token")
    if api not in sb.specs:
        return _bad(f"api must be one of {', '.join(sb.specs)}")
    try:
        since = _since(q.get("since"))
    except (ValueError, OverflowError):
        return _bad("since must be an RFC 3339 time or epoch seconds")
    tid = None
    if token:
        tid = token if token.startswith("tok_") else None
        if tid is None and "…" not in token:
            tid = f"tok_{token_hash(token)[:16]}"
    rows = []
    for r in sb.requests:
        if r["api"] != api or (since is not None and r["at"] < since):
            continue
        if token and (r.get("token_id") != tid if tid else r.get("token") != token):
            continue
        rows.append(r)
    tokens: dict[str, dict[str, Any]] = {}
    for t in {r.get("token_id") for r in rows} - {None}:
        record = sb.store.get(TABLE, str(t))
        if record is not None:
            tokens[str(t)] = {"scopes": record.get("scopes") or [], "mode": record.get("mode")}
    # a revoked token's scopes and mode are forgotten: the rules on them leave it out
    rules = grade(sb.specs[api], rows, tokens)
    failed = [r["id"] for r in rules if r["verdict"] == FAIL]
    return JSONResponse(
        {
            "api": api,
            "token": tid or token,
            "since": iso(since) if since is not None else None,
            "requests": len(rows),
            "passed": not failed,
            "failed": failed,
            "rules": rules,
        }
    )
