"""The documented view of a spec: what remains when everything marked `x-inferred` (or listed
in `x-inferred-keywords`) is taken out, so that a backend is judged only by what the vendor
documents say. Where the documents are silent, the view accepts what honest vendors choose:

* an inferred constraint (enum, pattern, lengths, bounds, `required`, a closed object, ...) is
  dropped; an inferred property may hold anything and need not be there;
* an optional property may be null: documents state types ("optional, array[string]"), almost
  never nullability, and sending or answering `null` for "absent" is an honest reading;
* a request body whose schema is inferred as a whole is not required (the documents show none);
* a page size's documented maximum may be capped or refused: the view drops it (the pagination
  check holds the backend to "no page holds more");
* an inferred response header is dropped; an inferred success status becomes `2XX` (201 or 200,
  204 or 200 with a body), inferred error statuses give way to one `4XX` with the error
  envelope (400 or 422 for validation, 404/405/501 for an endpoint a backend lacks);
* inferred operations stay (the suite reports what it sees of them apart, never as failures).

`compile.compile_spec(..., documented=True)` compiles this view into the documented `Contract`:
open envelopes (extra keys allowed), an error-code vocabulary closed only by a documented enum,
and operations counting only in documented rate-limit buckets.
"""

from __future__ import annotations

import copy
from typing import Any

# Schema keywords that constrain a value ("type" aside; `additionalProperties` only when false):
# what `x-inferred-keywords` may list (the provenance test walks the specs for the same ones).
CONSTRAINTS = (
    "enum",
    "const",
    "pattern",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
    "additionalProperties",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "not", "contains", "additionalProperties", "propertyNames")


def _inferred(node: Any) -> bool:
    return isinstance(node, dict) and node.get("x-inferred") is True


def schema(node: Any) -> Any:
    """A schema with its inferred constraints taken out (a new object; `$ref`s kept)."""
    if not isinstance(node, dict):
        return node
    if _inferred(node):
        # not shown by the documents at all: any value will do
        return {k: v for k, v in node.items() if k in ("description", "x-inferred", "x-inferred-reason")}
    out = dict(node)
    for key in node.get("x-inferred-keywords") or ():
        if key not in CONSTRAINTS:
            continue
        if key == "additionalProperties" and isinstance(out.get(key), dict):
            continue  # a schema for extra keys is not a closure
        out.pop(key, None)
    props = out.get("properties")
    if isinstance(props, dict):
        if isinstance(out.get("required"), list):
            out["required"] = [k for k in out["required"] if not _inferred(props.get(k))]
        required = set(out.get("required") or ())
        out["properties"] = {
            k: schema(v) if k in required else _nullable(schema(v)) for k, v in props.items()
        }
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [schema(s) for s in out[key]]
    for key in _SCHEMA_ONE:
        if isinstance(out.get(key), dict):
            out[key] = schema(out[key])
    return out


def _nullable(node: Any) -> Any:
    """`node` also accepting null (an optional property: the documents state no nullability)."""
    if not isinstance(node, dict) or _inferred(node):
        return node
    if "$ref" in node or "const" in node:
        return {"anyOf": [node, {"type": "null"}]}
    out = dict(node)
    kind = out.get("type")
    if isinstance(kind, str) and kind != "null":
        out["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        out["type"] = [*kind, "null"]
    elif kind is None:
        for key in ("anyOf", "oneOf"):
            if isinstance(out.get(key), list) and {"type": "null"} not in out[key]:
                out[key] = [*out[key], {"type": "null"}]
    if isinstance(out.get("enum"), list) and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def _response(resp: Any) -> Any:
    if not isinstance(resp, dict):
        return resp
    out = dict(resp)
    if isinstance(out.get("headers"), dict):
        out["headers"] = {n: h for n, h in out["headers"].items() if not _inferred(h)}
    if isinstance(out.get("content"), dict):
        out["content"] = {
            media: ({**m, "schema": schema(m["schema"])} if isinstance(m, dict) and "schema" in m else m)
            for media, m in out["content"].items()
        }
    return out


def _responses(responses: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    def resolved(r: Any) -> Any:
        ref = r.get("$ref") if isinstance(r, dict) else None
        if isinstance(ref, str) and ref.startswith("#/components/responses/"):
            target = (root.get("components") or {}).get("responses", {}).get(ref.rsplit("/", 1)[1])
            return {**(target or {}), **{k: v for k, v in r.items() if k != "$ref"}}
        return r

    out: dict[str, Any] = {}
    error_body: Any = None
    success_inferred: list[tuple[str, Any]] = []
    for code, r in responses.items():
        full = resolved(r)
        code = str(code)
        if _inferred(full) and code[:1] in ("2", "4"):
            if code.startswith("2"):
                success_inferred.append((code, full))
            elif error_body is None:
                error_body = full
            continue  # a redirect or a server error keeps its code: nothing else fits better
        if code.startswith("4") and error_body is None:
            error_body = full
        out[code] = _response(r)
    if success_inferred and not any(c.startswith("2") for c in out):
        full = success_inferred[0][1]
        relaxed = {k: v for k, v in full.items() if k not in ("x-inferred", "x-inferred-reason")}
        relaxed["description"] = f"{full.get('description', '')} (any 2xx: no status is documented)".strip()
        out["2XX"] = _response(relaxed)
    if error_body is not None and "4XX" not in out:
        # any 4xx in the error envelope (the envelope check holds its shape); what `details`
        # holds for other errors than the documented ones is the vendor's own
        generic: dict[str, Any] = {"content": _any_object(error_body.get("content"))}
        generic["description"] = "Any client error, in the error envelope (the documents list no closed set)."
        out["4XX"] = _response(generic)
    return out


def _any_object(content: Any) -> dict[str, Any]:
    """The media types of an error response, each holding any JSON object."""
    if not isinstance(content, dict):
        return {}
    return {m: {"schema": {"type": "object"}} for m in content}


def view(raw: dict[str, Any]) -> dict[str, Any]:
    """The documented view of a whole spec (a deep copy; `raw` is left as it is)."""
    doc = copy.deepcopy(raw)
    style = ((raw.get("x-sandbox") or {}).get("pagination") or {}).get("style")
    size = {"page": "per_page", "offset": "limit"}.get(str(style))
    components = doc.get("components") or {}
    for kind in ("schemas",):
        if isinstance(components.get(kind), dict):
            components[kind] = {n: schema(s) for n, s in components[kind].items()}
    if isinstance(components.get("parameters"), dict):
        components["parameters"] = {n: _parameter(p, size) for n, p in components["parameters"].items()}
    if isinstance(components.get("responses"), dict):
        components["responses"] = {n: _response(r) for n, r in components["responses"].items()}
    if isinstance(components.get("headers"), dict):
        components["headers"] = {n: h for n, h in components["headers"].items() if not _inferred(h)}
    for item in (doc.get("paths") or {}).values():
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("parameters"), list):
            item["parameters"] = [_parameter(p, size) for p in item["parameters"]]
        for method, op in item.items():
            if not isinstance(op, dict) or method == "parameters":
                continue
            if isinstance(op.get("parameters"), list):
                op["parameters"] = [_parameter(p, size) for p in op["parameters"]]
            body = op.get("requestBody")
            if isinstance(body, dict) and isinstance(body.get("content"), dict):
                shown = False
                for media in body["content"].values():
                    if isinstance(media, dict) and "schema" in media:
                        shown = shown or not _inferred(_target(media["schema"], raw))
                        media["schema"] = schema(media["schema"])
                if not shown:  # the documents show no body: sending none is the client's right
                    body["required"] = False
            if isinstance(op.get("responses"), dict):
                op["responses"] = _responses(op["responses"], raw)
    # headers referenced from responses but dropped from components would dangle
    dropped = {n for n, h in (raw.get("components") or {}).get("headers", {}).items() if _inferred(h)}
    _unref_headers(doc, {f"#/components/headers/{n}" for n in dropped})
    return doc


def _target(node: Any, root: dict[str, Any]) -> Any:
    """A schema, its `#/components/schemas/<name>` reference followed."""
    ref = node.get("$ref") if isinstance(node, dict) else None
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return ((root.get("components") or {}).get("schemas") or {}).get(ref.rsplit("/", 1)[1])
    return node


def _parameter(p: Any, size_param: str | None = None) -> Any:
    if not isinstance(p, dict) or "$ref" in p:
        return p
    out = dict(p)
    if "schema" in out and _inferred(p):  # a parameter the documents lack: any value of its type
        out["schema"] = {k: v for k, v in out["schema"].items() if k in ("type", "description", "default")}
    elif "schema" in out:
        out["schema"] = schema(out["schema"])
        if size_param and p.get("in") == "query" and p.get("name") == size_param:
            # "max: 100" says what a page holds at most: capping above it is as honest as refusing
            out["schema"] = {k: v for k, v in out["schema"].items() if k != "maximum"}
    return out


def _unref_headers(node: Any, refs: set[str]) -> None:
    if isinstance(node, dict):
        headers = node.get("headers")
        if isinstance(headers, dict):
            node["headers"] = {
                n: h for n, h in headers.items() if not (isinstance(h, dict) and h.get("$ref") in refs)
            }
        for v in node.values():
            _unref_headers(v, refs)
    elif isinstance(node, list):
        for v in node:
            _unref_headers(v, refs)
