"""Envelope templates (`x-sandbox.envelope`): where each placeholder sits, what shape it
implies, and how a body departs from it. The engine renders them (`mock_server/envelope.py`);
the suites read and judge bodies with them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MISSING: Any = object()
ANY = "$any"  # a template (or part) the documents do not show: any JSON value will do
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class Template:
    """One `x-sandbox.envelope` template: where each placeholder sits and what shape it implies."""

    value: Any
    open: bool = False  # the documented view: extra keys and any `details` shape are a vendor's choice
    # statuses whose body the documents never promise (`x-sandbox.envelope.inferred-statuses`):
    # in the documented view their shape is not judged (the full contract's finding is reported apart)
    unpromised: frozenset[int] = frozenset()

    def locate(self, name: str) -> tuple[str, ...] | None:
        """The key path of placeholder `$name` (or `$name?`), None when the template lacks it."""

        def walk(node: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
            if isinstance(node, str) and node.startswith("$") and node[1:].rstrip("?") == name:
                return path
            if isinstance(node, dict):
                for k, v in node.items():
                    found = walk(v, (*path, k))
                    if found is not None:
                        return found
            return None

        return walk(self.value, ())

    def extract(self, body: Any, name: str) -> Any:
        path = self.locate(name)
        if path is None:
            return MISSING
        node = body
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return MISSING
            node = node[key]
        return node

    @property
    def top_keys(self) -> set[str]:
        return set(self.value) if isinstance(self.value, dict) else set()

    def problems(self, body: Any, vocabulary: frozenset[str] = frozenset()) -> list[str]:
        """Every way `body` departs from the template (empty: it conforms)."""
        out: list[str] = []
        _compare(self.value, body, "", out, vocabulary, self.open)
        return out


_INT_PLACEHOLDERS = {"page", "per_page", "total", "limit", "offset"}


def _compare(
    tpl: Any, body: Any, where: str, out: list[str], vocabulary: frozenset[str], open_: bool = False
) -> None:
    at = where or "body"
    if isinstance(tpl, str) and tpl.startswith("$"):
        name = tpl[1:].rstrip("?")
        if name == "items" and not isinstance(body, list):
            out.append(f"{at} should be the list of items (an array), got {_kind(body)}")
        elif name in _INT_PLACEHOLDERS and (not isinstance(body, int) or isinstance(body, bool) or body < 0):
            out.append(f"{at} should be a non-negative integer (${name}), got {body!r}")
        elif name in ("request_id", "message") and not (isinstance(body, str) and body):
            out.append(f"{at} should be a non-empty string (${name}), got {_kind(body)}")
        elif name == "timestamp" and not (isinstance(body, str) and _RFC3339.match(body)):
            out.append(f"{at} should be an RFC 3339 timestamp, got {body!r}")
        elif name == "code":
            if not isinstance(body, str):
                out.append(f"{at} should be the error code (a string), got {_kind(body)}")
            elif vocabulary and body not in vocabulary:
                out.append(f"{at} {body!r} is not in the API's error code vocabulary")
        elif open_ and name in ("detail", "details"):
            pass  # what a vendor puts in details is its own (e.g. {limit, retry_after} on a 429)
        elif name == "detail" and body is not None and not _is_problem(body):
            out.append(f"{at} should be a {{field, reason}} object or null, got {json.dumps(body)[:80]}")
        elif (
            name == "details"
            and body is not None
            and not (isinstance(body, list) and all(_is_problem(p) for p in body))
        ):
            out.append(
                f"{at} should be a list of {{field, reason}} objects or null, got {json.dumps(body)[:80]}"
            )
        return
    if isinstance(tpl, dict):
        if not isinstance(body, dict):
            out.append(f"{at} should be an object with keys {sorted(tpl)}, got {_kind(body)}")
            return
        for key, sub in tpl.items():
            optional = isinstance(sub, str) and sub.startswith("$") and sub.endswith("?")
            if key not in body:
                if not optional:
                    out.append(f"{at} is missing key {key!r}")
                continue
            _compare(sub, body[key], f"{where}.{key}" if where else key, out, vocabulary, open_)
        extra = sorted(set(body) - set(tpl))
        if extra and not open_:
            out.append(f"{at} has keys the envelope does not define: {extra}")
        return
    if body != tpl:
        out.append(f"{at} should be {json.dumps(tpl)}, got {json.dumps(body)[:80]}")


def _is_problem(value: Any) -> bool:
    return isinstance(value, dict) and "reason" in value and "field" in value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def documented(envelope: dict[str, Any], name: str) -> Any:
    """Template `name` of `x-sandbox.envelope` without the parts its `inferred` map names: a
    whole template becomes `$any`, a part (`list/meta/page`) is left out (a new value)."""
    value = json.loads(json.dumps(envelope[name]))
    for part in envelope.get("inferred") or {}:
        head, *path = part.split("/")
        if head != name:
            continue
        if not path:
            return ANY
        node = value
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return value


def unpromised(envelope: dict[str, Any]) -> frozenset[int]:
    """Error statuses whose body shape the documents never promise (`inferred-statuses`)."""
    return frozenset(int(s) for s in envelope.get("inferred-statuses") or {})


def placeholders(template: Any) -> set[str]:
    """Every placeholder name in a template (`$name` and `$name?` alike)."""
    if isinstance(template, str) and template.startswith("$"):
        return {template[1:].rstrip("?")}
    if isinstance(template, dict):
        return set().union(*map(placeholders, template.values()))
    if isinstance(template, list):
        return set().union(*map(placeholders, template))
    return set()
