"""The control API's routes, read from its own contract (`control_api.yaml`), as the APIs'
are from theirs: a path template and a method name an operationId; the operationId names the
handler; a documented JSON request body is validated by its schema (`judge.schema`) before the
handler sees it. A route without a handler, or a handler without a route, fails at load."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from contract import HTTP_METHODS
from contract.refs import deref

SPEC = Path(__file__).with_name("control_api.yaml")


@dataclass(frozen=True)
class Route:
    operation_id: str
    method: str  # upper case
    template: str  # below /_mock, without its leading slash
    regex: re.Pattern[str]
    body_schema: dict[str, Any] | None  # the documented JSON body, $refs inlined


@cache
def routes() -> tuple[Route, ...]:
    doc = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    out = []
    for path, item in doc["paths"].items():
        template = path.strip("/")
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            media = ((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
            schema = deref(media["schema"], doc) if "schema" in media else None
            out.append(Route(op["operationId"], method.upper(), template, re.compile(pattern), schema))
    return tuple(out)


def match(method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
    """The route of `method path` and its path parameters; else None and whether the path
    exists under another method."""
    elsewhere = False
    for route in routes():
        m = route.regex.fullmatch(path)
        if m is None:
            continue
        if route.method == method:
            return route, m.groupdict(), False
        elsewhere = True
    return None, {}, elsewhere


def check_handlers(handlers: Mapping[str, Callable[..., Any]]) -> None:
    """Every documented operation has a handler, and every handler a documented operation."""
    documented = {r.operation_id for r in routes()}
    missing, extra = documented - set(handlers), set(handlers) - documented
    if missing or extra:
        raise RuntimeError(
            f"control API: operations without a handler: {sorted(missing)}; "
            f"handlers without a route in {SPEC.name}: {sorted(extra)}"
        )
