"""Compile a spec into a `Contract`, once: extensions checked against their schema, `$refs`
inlined, operations, responses, buckets, envelopes, resources and provenance read.

`load_path` caches by file (path, size, mtime), so the engine and both suites, in one process,
hold the very same objects."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from . import extensions, provenance
from .documented import view as documented_view
from .envelope import Template, unpromised
from .envelope import documented as documented_template
from .errors import SpecError
from .model import Bucket, Contract, Header, Operation, Pagination, Param, Resource, Response
from .refs import deref

# Installed from a wheel, the specs ship inside the package (`contract/specs`); in the source tree
# (and an editable install) they are the top-level specs/ folder.
_PACKAGED = Path(__file__).resolve().parent / "specs"
SPECS_DIR = _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parent.parent / "specs"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# libyaml's loader when built (the same documents, ~10x faster: every run of a suite loads a spec)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_EXT_SCHEMA = yaml.safe_load((Path(__file__).parent / "extensions.schema.yaml").read_text())
_CACHE: dict[Path, tuple[tuple[int, int], Contract]] = {}
_CACHE_LOCK = threading.Lock()


def available_specs(specs_dir: Path | None = None) -> dict[str, Path]:
    """Every vendor spec in the specs folder, by API name (file stem)."""
    return {p.stem: p for p in sorted((specs_dir or SPECS_DIR).glob("*.yaml"))}


def load_path(path: Path) -> Contract:
    """The compiled contract of the spec file at `path` (cached while the file is unchanged)."""
    path = Path(path).resolve()
    try:
        st = path.stat()
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read the spec {path}: {exc.strerror or exc}") from None
    key = (st.st_size, st.st_mtime_ns)
    with _CACHE_LOCK:
        hit = _CACHE.get(path)
        if hit is not None and hit[0] == key:
            return hit[1]
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError(f"{path.name}: not YAML: {exc}") from None
    compiled = compile_spec(raw, path.name)
    with _CACHE_LOCK:
        _CACHE[path] = (key, compiled)
    return compiled


def load(api: str | None, spec: str | None = None) -> Contract:
    """By API name (`specs/<api>.yaml`), or from `spec`: a file or an http(s) URL."""
    if spec and re.match(r"^https?://", spec):
        import httpx

        try:
            r = httpx.get(spec, timeout=30)
            r.raise_for_status()
        except httpx.HTTPError as exc:
            raise SpecError(f"cannot fetch the spec {spec}: {exc}") from None
        try:
            contract = compile_spec(yaml.safe_load(r.text), spec)
        except yaml.YAMLError as exc:
            raise SpecError(f"{spec}: not YAML: {exc}") from None
    else:
        found = available_specs()
        if spec:
            path = Path(spec)
        elif api in found:
            path = found[api]
        else:
            raise SpecError(f"unknown API {api!r}; known: {', '.join(found)}")
        if not path.is_file():
            raise SpecError(f"no spec at {path} (known APIs: {', '.join(found)})")
        contract = load_path(path)
    if api and contract.name != api:
        raise SpecError(f"the spec is for {contract.name!r}, not {api!r}")
    return contract


def load_all(names: list[str] | None = None, specs_dir: Path | None = None) -> list[Contract]:
    found = available_specs(specs_dir)
    unknown = set(names or []) - set(found)
    if unknown:
        raise SpecError(f"unknown API(s): {', '.join(sorted(unknown))}; known: {', '.join(found)}")
    return [load_path(found[n]) for n in (names or list(found))]


# ------------------------------------------------------------------------------ compiling
def compile_spec(raw: Any, where: str = "spec", documented: bool = False) -> Contract:
    """The contract of `raw`; with `documented`, of its documented view (`documented.py`)."""
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: not an OpenAPI document")
    _validate_extensions(raw, where)
    if documented:
        raw = documented_view(raw)
    doc = deref(raw, raw)
    config = doc["x-sandbox"]
    servers = doc.get("servers") or [{"url": "/"}]
    server_path = re.sub(r"^[a-z]+://[^/]+", "", servers[0]["url"]).rstrip("/")
    buckets = {
        name: Bucket(
            name,
            int(b["limit"]),
            float(b["window"]),
            provenance.reason_key(b),
            b.get("algorithm", "sliding-window"),
            b.get("burst"),
        )
        for name, b in config["rate-limits"].items()
    }
    pag = config.get("pagination") or {"style": "none"}
    if documented:
        buckets = {n: b for n, b in buckets.items() if b.provenance.documented}
    root_security = doc.get("security", [])
    operations = [
        _operation(path, method, item, buckets, root_security)
        for path, item in (doc.get("paths") or {}).items()
        for method in HTTP_METHODS
        if isinstance(item, dict) and method in item
    ]
    envelope = config["envelope"]
    _check_inferred_parts(envelope, where)

    def template(name: str) -> Any:  # the documented view leaves out what the documents do not show
        return documented_template(envelope, name) if documented else envelope[name]

    error = Template(
        template("error"), open=documented, unpromised=unpromised(envelope) if documented else frozenset()
    )
    vocabulary, by_status = _error_codes(operations, error, from_examples=not documented)
    info = doc.get("info") or {}
    contract = Contract(
        name=config["api"],
        title=str(info.get("title", config["api"])),
        version=str(info.get("version", "")),
        server_url=servers[0]["url"],
        base_path=f"/{config['api']}{server_path}",
        raw=raw,
        schemas=(doc.get("components") or {}).get("schemas") or {},
        token_prefixes=dict(config["token-prefixes"]),
        scopes=tuple(config.get("scopes") or ()),
        scopes_provenance=provenance.Provenance(True, config["scopes-inferred"])
        if config.get("scopes-inferred")
        else provenance.DOCUMENTED,
        media_provenance=provenance.Provenance(True, config["media-inferred"])
        if config.get("media-inferred")
        else provenance.DOCUMENTED,
        status_table={int(code): str(m) for code, m in (config.get("status-table") or {}).items()},
        modes_provenance=provenance.Provenance(True, config["modes-inferred"])
        if config.get("modes-inferred")
        else provenance.DOCUMENTED,
        buckets=buckets,
        pagination=Pagination(pag["style"], pag.get("default"), pag.get("max"), provenance.reason_key(pag)),
        single=Template(template("single"), open=documented),
        listing=Template(template("list"), open=documented),
        error=error,
        auth_cookie=config.get("auth-cookie"),
        bearer_schemes=tuple(
            name
            for name, scheme in ((doc.get("components") or {}).get("securitySchemes") or {}).items()
            if isinstance(scheme, dict)
            and scheme.get("type") == "http"
            and str(scheme.get("scheme", "")).lower() == "bearer"
        ),
        operations=operations,
        vocabulary=frozenset(vocabulary),
        status_codes={k: frozenset(v) for k, v in by_status.items()},
        view="documented" if documented else "full",
    )
    contract.resources = _resources(contract, doc.get("x-resources") or {})
    if not documented:
        contract.compile_view = lambda: compile_spec(raw, where, documented=True)
    return contract


def _check_inferred_parts(envelope: dict[str, Any], where: str) -> None:
    """Every `x-sandbox.envelope.inferred` path names a part of its template (a typo is an error)."""
    for part in envelope.get("inferred") or {}:
        head, *path = part.split("/")
        node = envelope.get(head)
        for key in path:
            if not isinstance(node, dict) or key not in node:
                raise SpecError(
                    f"{where}: x-sandbox.envelope.inferred names {part!r}, not in the {head} template"
                )
            node = node[key]


def _path_regex(path: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{([A-Za-z_][A-Za-z0-9_]*)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
    return re.compile(pattern)


def _json_media(content: Any) -> dict[str, Any]:
    media = (content or {}).get("application/json")
    return media if isinstance(media, dict) else {}


def _examples(media: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(_named_examples(media).values())


def _named_examples(media: dict[str, Any]) -> dict[str, Any]:
    """`example` (named "example") then each `examples.<name>.value`, by name, in spec order."""
    found = {"example": media["example"]} if "example" in media else {}
    for name, e in (media.get("examples") or {}).items():
        if isinstance(e, dict) and "value" in e:
            found[str(name)] = e["value"]
    return found


def _operation(
    path: str, method: str, item: dict[str, Any], buckets: dict[str, Bucket], root_security: Any
) -> Operation:
    op = item[method]
    op_prov = provenance.of(item, op)
    params: dict[tuple[str, str], Param] = {}
    for p in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        params[(p["name"], p["in"])] = Param(
            name=p["name"],
            location=p["in"],
            required=bool(p.get("required", p["in"] == "path")),
            schema=p.get("schema") or {},
            provenance=provenance.of(p, inherited=op_prov),
        )
    body = op.get("requestBody")
    body_schema = None
    body_examples: tuple[Any, ...] = ()
    body_media: tuple[str, ...] = ()
    if body is not None:
        content = body.get("content") or {}
        if "application/json" not in content:
            raise SpecError(f"{method.upper()} {path}: only application/json bodies are served")
        media = _json_media(content)
        body_schema = media.get("schema") or {}
        body_examples = _examples(media)
        body_media = tuple(content)
    security = op.get("security", root_security)
    return Operation(
        operation_id=op.get("operationId", f"{method} {path}"),
        method=method,
        path=path,
        regex=_path_regex(path),
        params=tuple(params.values()),
        body_schema=body_schema,
        body_required=bool(body and body.get("required", False)),
        body_examples=body_examples,
        body_media=body_media,
        public=security == [] or security == [{}],
        scopes=tuple(op.get("x-scopes") or ()),
        buckets=tuple(buckets[b] for b in op.get("x-rate-limit") or () if b in buckets),
        resource=extensions.resource_op(op.get("x-resource")),
        signature=extensions.signature(op.get("x-signature")),
        credential=extensions.credential(op.get("x-credential")),
        quota=extensions.quota(op.get("x-quota")),
        generated=extensions.generated(op.get("x-generated")),
        identity=op.get("x-identity"),
        requires=extensions.requires(op.get("x-requires")),
        action=extensions.action(op.get("x-action")),
        events=extensions.events(op.get("x-events"), _body_examples(op)),
        handler=op.get("x-handler"),
        responses={str(c): _response(str(c), r, op_prov) for c, r in (op.get("responses") or {}).items()},
        description=str(op.get("description") or ""),
        provenance=op_prov,
        raw=op,
    )


def _response(code: str, resp: Any, inherited: provenance.Provenance) -> Response:
    resp = resp if isinstance(resp, dict) else {}
    prov = provenance.of(resp, inherited=inherited)
    media = _json_media(resp.get("content"))
    schema = media.get("schema")
    return Response(
        status=code,
        description=str(resp.get("description") or ""),
        media_types=tuple(resp.get("content") or ()),
        schema=schema if isinstance(schema, dict) else None,
        headers={
            name.lower(): Header(
                name, h.get("schema") or {}, bool(h.get("required")), provenance.of(h, inherited=prov)
            )
            for name, h in (resp.get("headers") or {}).items()
            if isinstance(h, dict)
        },
        examples=_examples(media),
        named_examples=_named_examples(media),
        links={k: v for k, v in (resp.get("links") or {}).items() if isinstance(v, dict)},
        provenance=prov,
        stated_code=_stated_code(code, resp),
    )


def _stated_code(code: str, resp: dict[str, Any]) -> bool:
    """`x-stated-code: true`, only on a documented response of one error status with an example."""
    stated = resp.get("x-stated-code", False)
    if stated is not True and stated is not False:
        raise SpecError(f"response {code}: x-stated-code must be true or false, not {stated!r}")
    if stated and (not code.isdigit() or int(code) < 400 or provenance.of(resp).inferred):
        raise SpecError(f"response {code}: x-stated-code needs a documented error status (4xx/5xx)")
    return stated


def _scalar_enum(schema: Any, path: tuple[str, ...]) -> set[str]:
    node = schema
    for key in path:
        if not isinstance(node, dict):
            return set()
        node = (node.get("properties") or {}).get(key)
    if not isinstance(node, dict):
        return set()
    return {v for v in node.get("enum") or [] if isinstance(v, str)}


def _error_codes(
    operations: list[Operation], error: Template, from_examples: bool = True
) -> tuple[set[str], dict[int, set[str]]]:
    """The error-code vocabulary (enums of the error schemas, and with `from_examples` the codes
    in examples: examples show codes, only an enum closes the list) and the codes the examples
    document per HTTP status."""
    code_path = error.locate("code")
    vocabulary: set[str] = set()
    by_status: dict[int, set[str]] = {}
    for op in operations:
        for code in op.responses:
            if not (code.isdigit() and int(code) >= 400):
                continue
            if code_path is not None:
                vocabulary |= _scalar_enum(op.response_schema(code), code_path)
            for ex in op.response_examples(code):
                value = error.extract(ex, "code")
                if isinstance(value, str):
                    by_status.setdefault(int(code), set()).add(value)
                    if from_examples:
                        vocabulary.add(value)
    return vocabulary, by_status


def _resources(contract: Contract, declared: dict[str, Any]) -> dict[str, Resource]:
    out = {
        name: Resource(name, conf, contract.schemas.get(conf.get("schema"), {}))
        for name, conf in declared.items()
    }
    kinds = {k: f"{k}_op" for k in ("list", "get", "create", "update", "delete")}
    for op in contract.operations:
        xr = op.resource
        res = out.get(xr.name) if xr is not None else None
        attr = kinds.get(xr.op) if xr is not None else None
        if res is not None and attr is not None:
            setattr(res, attr, op)
    for res in out.values():
        if res.create_op is None:
            res.create_op = _handler_create(contract, res)
        if res.get_op is not None:
            if res.delete_op is None:
                res.delete_op = contract.op("delete", res.get_op.path)
            if res.update_op is None:
                res.update_op = contract.op("patch", res.get_op.path)
            prefix = res.get_op.path + "/"
            res.actions = [o for o in contract.operations if o.path.startswith(prefix)]
    return out


def _handler_create(contract: Contract, res: Resource) -> Operation | None:
    """A POST served by a handler that creates `res`: on its list path, else one linking to its get."""
    if res.list_op is not None:
        op = contract.op("post", res.list_op.path)
        if op is not None and not (op.resource and op.resource.name != res.name):
            return op
    if res.get_op is not None:
        for op in contract.operations:
            if (
                op.method == "post"
                and not op.path.startswith(res.get_op.path)
                and any(link.get("operationId") == res.get_op.operation_id for link in op.links().values())
            ):
                return op
    return None


# ------------------------------------------------------------------------------ extensions
def _validate_extensions(doc: dict[str, Any], where: str) -> None:
    defs = _EXT_SCHEMA["$defs"]

    def check(instance: Any, kind: str, at: str) -> None:
        schema = {"$schema": _EXT_SCHEMA["$schema"], "$defs": defs, "$ref": f"#/$defs/{kind}"}
        errors = sorted(Draft202012Validator(schema).iter_errors(instance), key=str)
        if errors:
            inner = "".join(f".{p}" if isinstance(p, str) else f"[{p}]" for p in errors[0].absolute_path)
            raise SpecError(f"{where}: {at}{inner}: {errors[0].message}")

    if "x-sandbox" not in doc:
        raise SpecError(f"{where}: missing x-sandbox (the envelope, limits and scopes the sandbox needs)")
    check(doc["x-sandbox"], "root", "x-sandbox")
    for name, res in (doc.get("x-resources") or {}).items():
        check(res, "resource", f"x-resources.{name}")
        if res["schema"] not in (doc.get("components") or {}).get("schemas", {}):
            raise SpecError(f"{where}: x-resources.{name}: no schema {res['schema']}")
        for child in res.get("cascade") or ():
            if child not in doc["x-resources"]:
                raise SpecError(f"{where}: x-resources.{name}.cascade: unknown resource {child}")
        _check_settles(res, f"{where}: x-resources.{name}.lifecycle")
    buckets = doc["x-sandbox"]["rate-limits"]
    for path, item in (doc.get("paths") or {}).items():
        for method in HTTP_METHODS:
            op = item.get(method) if isinstance(item, dict) else None
            if op is None:
                continue
            at = f"{method.upper()} {path}"
            if "x-resource" in op:
                check(op["x-resource"], "operation", at)
                if op["x-resource"]["name"] not in (doc.get("x-resources") or {}):
                    raise SpecError(f"{where}: {at}: unknown resource {op['x-resource']['name']}")
            elif "x-action" in op:
                _check_action(doc, op["x-action"], check, f"{where}: {at}")
            elif "x-handler" not in op:
                raise SpecError(f"{where}: {at}: needs x-resource, x-action or x-handler")
            if "x-signature" in op:
                check(op["x-signature"], "signature", f"{at} x-signature")
                if op["x-signature"]["resource"] not in (doc.get("x-resources") or {}):
                    raise SpecError(
                        f"{where}: {at}: x-signature: unknown resource {op['x-signature']['resource']}"
                    )
            if "x-events" in op:
                _check_events(doc, op, check, f"{where}: {at}")
            for ext in ("generated", "requires", "identity"):
                if f"x-{ext}" in op:
                    check(op[f"x-{ext}"], ext, f"{at} x-{ext}")
            for field, need in (op.get("x-requires") or {}).items():
                if need["collection"] not in (doc.get("x-resources") or {}):
                    raise SpecError(
                        f"{where}: {at}: x-requires.{field}: unknown resource {need['collection']}"
                    )
            if "x-quota" in op:
                _check_quota(doc, op["x-quota"], check, f"{where}: {at}")
            if "x-credential" in op:
                _check_credential(doc, op["x-credential"], check, f"{where}: {at}")
            if "x-rate-limit" not in op:
                raise SpecError(f"{where}: {at}: missing x-rate-limit")
            for bucket in op["x-rate-limit"]:
                if bucket not in buckets:
                    raise SpecError(f"{where}: {at}: unknown rate-limit bucket {bucket}")
            unknown = set(op.get("x-scopes", [])) - set(doc["x-sandbox"].get("scopes", []))
            if unknown:
                raise SpecError(f"{where}: {at}: scopes not in x-sandbox.scopes: {sorted(unknown)}")


Check = Callable[[Any, str, str], None]


def _body_examples(op: dict[str, Any]) -> dict[str, Any]:
    media = ((op.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    return dict(media.get("examples") or {})


def _check_events(doc: dict[str, Any], op: dict[str, Any], check: Check, at: str) -> None:
    """`x-events`: keys name the body's examples, values a collection under `x-signature.resource`."""
    check(op["x-events"], "events", f"{at} x-events")
    if "x-signature" not in op:
        raise SpecError(f"{at}: x-events needs x-signature (whose record the deliveries name)")
    resources = doc.get("x-resources") or {}
    for name, spec in op["x-events"].items():
        if name not in _body_examples(op):
            raise SpecError(f"{at}: x-events.{name}: no request body example named {name}")
        for collection in spec.values():
            if collection not in resources:
                raise SpecError(f"{at}: x-events.{name}: unknown resource {collection}")


def _check_quota(doc: dict[str, Any], raw: Any, check: Check, at: str) -> None:
    check(raw, "quota", f"{at} x-quota")
    for item in raw:
        if item["counts"] not in (doc.get("x-resources") or {}):
            raise SpecError(f"{at}: x-quota: unknown resource {item['counts']}")


def _check_credential(doc: dict[str, Any], raw: Any, check: Check, at: str) -> None:
    """Schema-check `raw`, and that the operations it names exist and its pattern compiles."""
    check(raw, "credential", f"{at} x-credential")
    ids = {
        op.get("operationId")
        for item in (doc.get("paths") or {}).values()
        if isinstance(item, dict)
        for op in item.values()
        if isinstance(op, dict)
    }
    for key in ("probe", "revoked-by", "listed-by"):
        if key in raw and raw[key] not in ids:
            raise SpecError(f"{at}: x-credential.{key}: no operation {raw[key]}")
    if "pattern" in raw:
        try:
            re.compile(raw["pattern"])
        except re.error as exc:
            raise SpecError(f"{at}: x-credential.pattern: {exc}") from None


def _check_settles(res: dict[str, Any], at: str) -> None:
    """The sandbox serves `settles` with its transitions: from the status a create sets, they
    must lead to one of the statuses declared as the end."""
    cycle = extensions.lifecycle(res.get("lifecycle"))
    if cycle is None or cycle.settles is None:
        return
    start = (res.get("defaults") or {}).get(cycle.field)
    if not cycle.reached(start) & set(cycle.settles.to):
        raise SpecError(f"{at}.settles: from {start!r} no transition reaches {list(cycle.settles.to)}")
def _check_action(doc: dict[str, Any], raw: Any, check: Check, at: str) -> None:
    """Schema-check `raw`; its collections exist, one action unless a body field selects it,
    an action through `via` reaches `to` by the resource's lifecycle, `without` names actions."""
    check(raw, "action", f"{at} x-action")
    resources = doc.get("x-resources") or {}
    conf = resources.get(raw["resource"])
    if conf is None:
        raise SpecError(f"{at}: x-action: unknown resource {raw['resource']}")
    if "select" not in raw and len(raw["actions"]) != 1:
        raise SpecError(f"{at}: x-action: several actions need `select` (the body field naming one)")
    steps = {t["from"]: t["to"] for t in (conf.get("lifecycle") or {}).get("transitions") or ()}
    named = {  # every action declared on this resource, whichever operation declares it
        n
        for item in (doc.get("paths") or {}).values()
        if isinstance(item, dict)
        for op in item.values()
        if isinstance(op, dict) and (op.get("x-action") or {}).get("resource") == raw["resource"]
        for n in (op["x-action"].get("actions") or {})
    }
    for name, act in raw["actions"].items():
        for other in set(act.get("without") or ()) - named:
            raise SpecError(f"{at}: x-action.{name}.without: no action {other} of {raw['resource']}")
        if act.get("creates") is not None and act["creates"] not in resources:
            raise SpecError(f"{at}: x-action.{name}.creates: unknown resource {act['creates']}")
        if "via" in act:
            seen, state = set(), act["via"]
            while state in steps and state not in seen and state != act.get("to"):
                seen.add(state)
                state = steps[state]
            if "to" not in act or state != act["to"]:
                where_to = f"{act['via']} to {act.get('to')}"
                raise SpecError(f"{at}: x-action.{name}: no lifecycle of {raw['resource']} leads {where_to}")
