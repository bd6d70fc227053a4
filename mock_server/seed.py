"""`--seed FILE`: deterministic accounts, tokens, users and resources (YAML or JSON).

```yaml
tokens:
  - {api: nurosentrix, token: nsx_test_ci_full_0001, scopes: [servers:read], account: acme,
     mode: test, name: ci}
users:
  - {api: nurosentrix, id: usr_ci, email: ci@example.com, password: s3cret!, name: CI, account: acme}
resources:
  - {api: nurosentrix, collection: servers, account: acme, mode: test,
     data: {id: srv_fixed, name: web-1, provider: digitalocean, region: nyc1}}
```
Applying a seed twice leaves the same state (tokens and resources with the same ids are replaced).
`serve` rehearses a seed on an empty in-memory sandbox before its store is opened
(`rehearse`): a seed that would fail half-way is refused with one line, the data file untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from judge.schema import schema_problems

from .errors import ApiError
from .sandbox import Sandbox
from .tokens import MODES
from .users import save_user


class SeedError(Exception):
    pass


def load_seed(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise SeedError(f"{path}: cannot read seed file ({reason})") from None
    except RecursionError:
        raise SeedError(f"{path}: cannot read seed file (nested too deeply)") from None
    if not isinstance(data, dict) or set(data) - {"tokens", "users", "resources"}:
        raise SeedError(f"{path}: a seed is a mapping of tokens, users and resources")
    for key in ("tokens", "users", "resources"):
        if data.get(key) is not None and not isinstance(data[key], list):
            raise SeedError(f"{path}: {key} is a list of entries (- api: ...)")
    return data


def rehearse(sandbox: Sandbox, data: dict[str, Any]) -> None:
    """Apply `data` to `sandbox` (an empty in-memory one over the same specs): a `SeedError`
    here is one the real store is spared."""
    apply_seed(sandbox, data)


def _text(where: str, entry: dict[str, Any], key: str, required: bool = False) -> None:
    value = entry.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or not value:
        raise SeedError(f"{where}: {key} must be a non-empty string, not {value!r}"[:300])


def _known_api(sandbox: Sandbox, where: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        raise SeedError(f"{where}: an entry is a mapping (api: ..., ...)")
    api = entry.get("api")
    if api not in sandbox.specs:
        what = "no api given" if api is None else f"unknown api {api!r}"
        raise SeedError(f"{where}: {what}; known: {', '.join(sandbox.specs)}")


def apply_seed(sandbox: Sandbox, data: dict[str, Any]) -> None:
    for i, t in enumerate(data.get("tokens", [])):
        _known_api(sandbox, f"tokens[{i}]", t)
        if "token" not in t:
            raise SeedError(f"tokens[{i}]: no token given (the value to accept, with the API's prefix)")
        for key in ("token", "account", "mode", "name"):
            _text(f"tokens[{i}]", t, key, required=key == "token")
        if t.get("mode", "test") not in MODES:
            raise SeedError(f"tokens[{i}]: mode is one of {', '.join(MODES)}, not {t.get('mode')!r}")
        scopes = t.get("scopes")
        if scopes is not None and (
            not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes)
        ):
            raise SeedError(
                f"tokens[{i}]: scopes is a list of scope names ([servers:read, ...]), not {scopes!r}"
            )
        try:
            sandbox.mint(
                t["api"],
                t.get("scopes"),
                t.get("mode", "test"),
                t.get("account", "default"),
                t.get("name"),
                t["token"],
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise SeedError(f"tokens[{i}]: {exc}") from None
    for i, u in enumerate(data.get("users", [])):
        _known_api(sandbox, f"users[{i}]", u)
        for key in ("id", "email", "login", "name", "account", "mode"):
            _text(f"users[{i}]", u, key)
        try:
            save_user(sandbox.store, sandbox.ids, u)
        except (KeyError, ValueError, TypeError) as exc:
            raise SeedError(f"users[{i}]: {exc}") from None
    for i, r in enumerate(data.get("resources", [])):
        _known_api(sandbox, f"resources[{i}]", r)
        api, name = r["api"], r.get("collection")
        if name not in sandbox.specs[api].resources:
            known = ", ".join(sandbox.specs[api].resources)
            raise SeedError(f"resources[{i}]: {api} has no collection {name!r}; known: {known}")
        res = sandbox.resources[api]
        for key in ("account", "mode"):
            _text(f"resources[{i}]", r, key)
        data = r.get("data", {})
        if not isinstance(data, dict):
            raise SeedError(
                f"resources[{i}]: data is a mapping of the record's fields, not {type(data).__name__}"
            )
        owner = {"_account": r.get("account", "default"), "_mode": r.get("mode", "test")}
        fields = dict(data)
        rid = fields.pop("id", None)
        if rid is not None and (not isinstance(rid, str) or not rid):
            raise SeedError(f"resources[{i}]: data.id must be a non-empty string, not {rid!r}")
        try:
            record = res.create(name, owner, fields)
        except ApiError as exc:
            raise SeedError(f"resources[{i}]: {exc.message}") from None
        schema = sandbox.specs[api].resources[name].schema
        public = {k: v for k, v in record.items() if not k.startswith("_")}
        problems = schema_problems({**public, "id": rid or record["id"]}, schema)
        if problems:
            found = "; ".join(f"{p.field}: {p.reason}" for p in problems[:3])
            raise SeedError(f"resources[{i}]: the record breaks the {name} schema ({found})")
        if rid is not None:
            sandbox.store.delete(res.table(name), record["id"])
            sandbox.store.replace(res.table(name), {**record, "id": rid})
