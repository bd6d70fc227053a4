"""Provenance of every contract element: documented (quoted from the vendor documents) or inferred.

The vendor documents in `../shared/seeds/` are the contract. A spec element that constrains a
backend — an endpoint, a parameter, a status code, a response header, a schema constraint — is
either a documented fact, listed in `tests/provenance/<api>.yaml` with the words of the document
that back it, or marked `x-inferred: true` (+ `x-inferred-reason`) on itself or an ancestor, or
named in its schema node's `x-inferred-keywords` list (with the node's `x-inferred-reason`: the
node itself is documented, those constraints on it are not; e.g. `per_page`'s documented
`maximum: 100` and inferred `minimum: 1`). A `$ref` is covered when what it points at is.

Also here: examples agree with their schemas, a request body built from property-level examples is
one the sandbox accepts, response schemas stay open to extra fields, and flow sequences holding a
colon are quoted (Dredd's YAML parser rejects `[servers:write]`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from contract import HTTP_METHODS, SPECS_DIR
from contract.documented import CONSTRAINTS
from tests.apis import APIS

ROOT = Path(__file__).resolve().parents[1]
PROVENANCE = Path(__file__).parent / "provenance"
SEEDS = Path(os.environ.get("SANDBOX_SEEDS_DIR", ROOT.parent / "shared" / "seeds"))

_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_SUBSCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "not", "contains", "additionalProperties", "if", "then", "else")


def load(api: str) -> dict[str, Any]:
    return yaml.safe_load((SPECS_DIR / f"{api}.yaml").read_text())


def allow_list(api: str) -> dict[str, Any]:
    return yaml.safe_load((PROVENANCE / f"{api}.yaml").read_text())


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str | int) -> str:
    return "".join("/" + escape(str(t)) for t in tokens)


def split(ptr: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr.split("/")[1:]]


def resolve(doc: Any, ptr: str) -> Any:
    node = doc
    for token in split(ptr):
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# ---------------------------------------------------------------------------- what must be covered


def schema_constraints(node: Any, at: str) -> Iterator[str]:
    """Pointers of every constraint keyword in a schema and its subschemas (not through $refs:
    a referenced schema is checked where it is written)."""
    if not isinstance(node, dict):
        return
    for kw in CONSTRAINTS:
        if kw not in node:
            continue
        if kw == "additionalProperties" and node[kw] is not False:
            continue
        if kw == "required" and not node[kw]:
            continue
        yield f"{at}/{kw}"
    for key in _SUBSCHEMA_MAPS:
        for name, sub in (node.get(key) or {}).items():
            yield from schema_constraints(sub, f"{at}/{key}/{escape(name)}")
    for key in _SUBSCHEMA_LISTS:
        for i, sub in enumerate(node.get(key) or []):
            yield from schema_constraints(sub, f"{at}/{key}/{i}")
    for key in _SUBSCHEMA_ONE:
        if isinstance(node.get(key), dict):
            yield from schema_constraints(node[key], f"{at}/{key}")


def elements(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, JSON pointer) of every element that must be documented or inferred."""
    for path, item in doc["paths"].items():
        base = pointer("paths", path)
        yield "endpoint", base
        for i, _ in enumerate(item.get("parameters") or []):
            yield "parameter", f"{base}/parameters/{i}"
        for method in HTTP_METHODS:
            if method not in item:
                continue
            op = item[method]
            yield "endpoint", f"{base}/{method}"
            for i, _ in enumerate(op.get("parameters") or []):
                yield "parameter", f"{base}/{method}/parameters/{i}"
            for code, response in (op.get("responses") or {}).items():
                yield "status", f"{base}/{method}/responses/{code}"
                for name in response.get("headers") or {}:
                    yield "header", f"{base}/{method}/responses/{code}/headers/{escape(name)}"
    for name, response in (doc.get("components", {}).get("responses") or {}).items():
        for header in response.get("headers") or {}:
            yield "header", pointer("components", "responses", name, "headers", header)

    def schemas(node: Any, at: str) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema" and isinstance(value, dict):
                    yield from schema_constraints(value, f"{at}/schema")
                elif key != "schemas" or at != "/components":
                    yield from schemas(value, f"{at}/{escape(key)}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from schemas(value, f"{at}/{i}")

    for kind_ptr in schemas(doc["paths"], "/paths"):
        yield "constraint", kind_ptr
    for kind_ptr in schemas(doc.get("components", {}), "/components"):
        yield "constraint", kind_ptr
    for name, schema in (doc.get("components", {}).get("schemas") or {}).items():
        for ptr in schema_constraints(schema, pointer("components", "schemas", name)):
            yield "constraint", ptr


# ---------------------------------------------------------------------------- how it is covered


class Provenance:
    def __init__(self, api: str) -> None:
        self.doc = load(api)
        self.documented: dict[str, str] = dict(allow_list(api).get("documented") or {})

    def inferred(self, ptr: str) -> bool:
        """An x-inferred mark on the node or an ancestor, or the keyword in the parent's
        x-inferred-keywords."""
        tokens = split(ptr)
        node: Any = self.doc
        for i, token in enumerate(tokens):
            if isinstance(node, dict) and node.get("x-inferred") is True:
                return True
            if (
                i == len(tokens) - 1
                and isinstance(node, dict)
                and token in (node.get("x-inferred-keywords") or {})
            ):
                return True
            node = node[int(token)] if isinstance(node, list) else node[token]
        return isinstance(node, dict) and node.get("x-inferred") is True

    def covered(self, ptr: str, _seen: frozenset[str] = frozenset()) -> bool:
        if ptr in self.documented or self.inferred(ptr):
            return True
        node = resolve(self.doc, ptr)
        ref = node.get("$ref") if isinstance(node, dict) else None
        if isinstance(ref, str) and ref.startswith("#/") and ref[1:] not in _seen:
            return self.covered(ref[1:], _seen | {ptr})
        return False


@pytest.mark.parametrize("api", APIS)
def test_every_element_is_documented_or_inferred(api: str) -> None:
    prov = Provenance(api)
    missing = [f"{kind} {ptr}" for kind, ptr in elements(prov.doc) if not prov.covered(ptr)]
    assert missing == [], (
        f"{len(missing)} elements neither quoted in tests/provenance nor x-inferred:\n" + "\n".join(missing)
    )


@pytest.mark.parametrize("api", APIS)
def test_documented_entries_exist_are_not_inferred_and_quote_the_documents(api: str) -> None:
    prov = Provenance(api)
    data = allow_list(api)
    assert prov.documented, "the allow-list may not be empty"
    for ptr, quote in prov.documented.items():
        try:
            resolve(prov.doc, ptr)
        except (KeyError, IndexError, ValueError):
            pytest.fail(f"{ptr}: listed as documented but not in specs/{api}.yaml")
        assert not prov.inferred(ptr), f"{ptr}: both documented and marked x-inferred"
        assert isinstance(quote, str) and len(normalise(quote)) >= 8, (
            f"{ptr}: needs a quote from the document"
        )
    if not SEEDS.is_dir():
        pytest.skip(f"vendor documents not found at {SEEDS} (set SANDBOX_SEEDS_DIR)")
    text = normalise(" ".join((SEEDS / name).read_text() for name in data["seeds"]))
    wrong = [f"{ptr}: {quote!r}" for ptr, quote in prov.documented.items() if normalise(quote) not in text]
    assert wrong == [], "quotes not found in the documents:\n" + "\n".join(wrong)


@pytest.mark.parametrize("api", APIS)
def test_inferred_keywords_name_present_keywords_with_reasons(api: str) -> None:
    def walk(node: Any, at: str) -> Iterator[str]:
        if isinstance(node, dict):
            marks = node.get("x-inferred-keywords")
            if marks is not None:
                if not isinstance(marks, list) or not marks:
                    yield f"{at}: x-inferred-keywords must be a non-empty list of keywords"
                    marks = []
                for kw in marks:
                    if kw not in CONSTRAINTS or kw not in node:
                        yield f"{at}: x-inferred-keywords names {kw}, not a constraint of this node"
                if not str(node.get("x-inferred-reason") or "").strip():
                    yield f"{at}: x-inferred-keywords without an x-inferred-reason"
                if node.get("x-inferred") is True:
                    yield f"{at}: x-inferred-keywords on a node that is x-inferred as a whole"
            for k, v in node.items():
                yield from walk(v, f"{at}/{escape(k)}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, f"{at}/{i}")

    assert list(walk(load(api), "")) == []


@pytest.mark.parametrize("api", APIS)
def test_sandbox_parameters_say_where_they_come_from(api: str) -> None:
    """x-sandbox rate-limit buckets and pagination: documented (quoted) or `inferred: <reason>`."""
    prov = Provenance(api)
    sandbox = prov.doc["x-sandbox"]
    parts = {f"/x-sandbox/rate-limits/{b}": v for b, v in sandbox["rate-limits"].items()}
    parts["/x-sandbox/pagination"] = sandbox["pagination"]
    for ptr, part in parts.items():
        inferred = str(part.get("inferred") or "").strip()
        assert bool(inferred) != (ptr in prov.documented), f"{ptr}: exactly one of documented or inferred"
    for code in sandbox.get("status-table") or {}:  # a status table is the documents' own: quoted
        assert f"/x-sandbox/status-table/{code}" in prov.documented, f"status-table {code}: not quoted"


@pytest.mark.parametrize("api", APIS)
def test_envelope_templates_say_where_they_come_from(api: str) -> None:
    """x-sandbox.envelope: each template quoted from the documents or inferred as a whole
    (`inferred: {<template>: why}`); a documented template may still have inferred parts
    (`list/meta/page`), and statuses whose body the documents never promise carry a reason."""
    prov = Provenance(api)
    envelope = prov.doc["x-sandbox"]["envelope"]
    inferred = envelope.get("inferred") or {}
    for name in ("single", "list", "error"):
        ptr = f"/x-sandbox/envelope/{name}"
        assert (name in inferred) != (ptr in prov.documented), f"{ptr}: exactly one of documented or inferred"
    for part, why in {**inferred, **(envelope.get("inferred-statuses") or {})}.items():
        assert len(normalise(str(why))) >= 20, f"{part}: needs a reason"
        head = str(part).split("/", 1)[0]
        if head in ("single", "list", "error") and "/" in str(part):
            assert f"/x-sandbox/envelope/{head}" in prov.documented, f"{part}: a part of an inferred template"


# ---------------------------------------------------------------------------- open responses


def _response_schemas(doc: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    def media(responses: dict[str, Any], at: str) -> Iterator[tuple[str, Any]]:
        for code, resp in responses.items():
            for mt, content in (resp.get("content") or {}).items():
                if isinstance(content.get("schema"), dict):
                    yield f"{at}/{code}/content/{escape(mt)}/schema", content["schema"]

    for path, item in doc["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield from media(
                    item[method].get("responses") or {}, pointer("paths", path, method, "responses")
                )
    yield from media(doc.get("components", {}).get("responses") or {}, "/components/responses")


@pytest.mark.parametrize("api", APIS)
def test_response_schemas_stay_open_unless_a_document_closes_them(api: str) -> None:
    prov = Provenance(api)
    closed: list[str] = []

    def visit(node: Any, at: str, seen: set[str]) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            seen.add(ref)
            visit(resolve(prov.doc, ref[1:]), ref[1:], seen)
        if node.get("additionalProperties") is False and f"{at}/additionalProperties" not in prov.documented:
            closed.append(at)
        for key in _SUBSCHEMA_MAPS:
            for name, sub in (node.get(key) or {}).items():
                visit(sub, f"{at}/{key}/{escape(name)}", seen)
        for key in _SUBSCHEMA_LISTS:
            for i, sub in enumerate(node.get(key) or []):
                visit(sub, f"{at}/{key}/{i}", seen)
        for key in _SUBSCHEMA_ONE:
            visit(node.get(key), f"{at}/{key}", seen)

    for at, schema in _response_schemas(prov.doc):
        visit(schema, at, set())
    assert sorted(set(closed)) == []


# ---------------------------------------------------------------------------- examples


def _validator(doc: dict[str, Any], ptr: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource("urn:spec", DRAFT202012.create_resource(doc))
    return Draft202012Validator(
        {"$ref": f"urn:spec#{ptr}"}, registry=registry, format_checker=FormatChecker()
    )


def examples(doc: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(where, schema pointer, example value) for every example in the spec."""

    def walk(node: Any, at: str) -> Iterator[tuple[str, str, Any]]:
        if isinstance(node, dict):
            has_schema = isinstance(node.get("schema"), dict)
            if has_schema and "example" in node:
                yield f"{at}/example", f"{at}/schema", node["example"]
            if has_schema and isinstance(node.get("examples"), dict):
                for name, ex in node["examples"].items():
                    if isinstance(ex, dict) and "value" in ex:
                        yield f"{at}/examples/{escape(name)}", f"{at}/schema", ex["value"]
            is_schema = at.startswith("/components/schemas/") or at.endswith("/schema") or "/schema/" in at
            if is_schema and isinstance(node.get("examples"), list) and not has_schema:
                for i, value in enumerate(node["examples"]):
                    yield f"{at}/examples/{i}", at, value
            for k, v in node.items():
                if k in ("example", "examples") and not isinstance(v, dict):
                    continue
                yield from walk(v, f"{at}/{escape(k)}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, f"{at}/{i}")

    yield from walk(doc, "")


@pytest.mark.parametrize("api", APIS)
def test_every_example_validates_against_its_schema(api: str) -> None:
    doc = load(api)
    wrong = []
    count = 0
    for where, schema_ptr, value in examples(doc):
        count += 1
        errors = list(_validator(doc, schema_ptr).iter_errors(value))
        if errors:
            wrong.append(f"{where}: {errors[0].message}")
    assert count > 20
    assert wrong == []


def _deref(node: Any, doc: dict[str, Any]) -> Any:
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**resolve(doc, node["$ref"][1:]), **siblings}
    return node


def _property_examples(schema: Any, doc: dict[str, Any]) -> dict[str, list[Any]]:
    schema = _deref(schema, doc)
    found: dict[str, list[Any]] = {}
    for name, prop in (schema.get("properties") or {}).items():
        prop = _deref(prop, doc)
        values = list(prop.get("examples") or []) + ([prop["example"]] if "example" in prop else [])
        if values:
            found[name] = values
    return found


def request_bodies(doc: dict[str, Any]) -> Iterator[tuple[str, str, Any, Any, dict[str, str]]]:
    """(method, path, body schema, the operation's own body example, its required headers' examples)
    of every JSON request body."""
    for path, item in doc["paths"].items():
        for method in HTTP_METHODS:
            op = item.get(method) or {}
            media = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            if not media:
                continue
            example = media.get("example")
            if example is None and media.get("examples"):
                example = next(iter(media["examples"].values()))["value"]
            params = [_deref(p, doc) for p in (item.get("parameters") or []) + (op.get("parameters") or [])]
            headers = {
                p["name"]: str(p["example"]) for p in params if p["in"] == "header" and p.get("required")
            }
            yield method, path, media["schema"], example, headers


@pytest.mark.parametrize("api", APIS)
def test_property_examples_combine_into_a_body_the_sandbox_accepts(api: str, make_harness: Any) -> None:
    """Tools such as Schemathesis build bodies from property-level examples: every combination
    (over the operation's own example) must pass the sandbox's validation and rules."""
    doc = load(api)
    harness = make_harness()
    token = harness.token(api)
    refused = []
    tried = 0
    for method, path, schema, example, headers in request_bodies(doc):
        props = _property_examples(schema, doc)
        if not props:
            continue
        names = sorted(props)
        for combo in itertools.islice(itertools.product(*(props[n] for n in names)), 64):
            body = {**(example or {}), **dict(zip(names, combo, strict=True))}
            url = re.sub(r"\{[^}]+\}", "missing_id", path)
            client = harness.client(api, token)
            r = client.request(
                method.upper(),
                url,
                content=json.dumps(body),
                headers={"Content-Type": "application/json", **headers},
            )
            tried += 1
            if r.status_code in (400, 413, 415, 422) or r.status_code >= 500:
                refused.append(f"{method.upper()} {path} {body}: {r.status_code} {r.text[:200]}")
    assert tried > 0
    assert refused == []


# ---------------------------------------------------------------------------- YAML hygiene


@pytest.mark.parametrize("api", APIS)
def test_flow_sequences_with_colons_are_quoted(api: str) -> None:
    """`x-scopes: [servers:write]` is valid YAML but Dredd's parser rejects it."""
    bad = []
    for n, line in enumerate((SPECS_DIR / f"{api}.yaml").read_text().splitlines(), 1):
        for seq in re.findall(r":\s\[([^\]'\"{]*)\]", line):
            if any(":" in item for item in seq.split(",")):
                bad.append(f"{n}: {line.strip()}")
    assert bad == []
