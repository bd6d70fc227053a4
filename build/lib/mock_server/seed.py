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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .sandbox import Sandbox
from .users import save_user


class SeedError(Exception):
    pass


def load_seed(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SeedError(f"{path}: cannot read seed file ({exc})") from None
    if not isinstance(data, dict) or set(data) - {"tokens", "users", "resources"}:
        raise SeedError(f"{path}: a seed is a mapping of tokens, users and resources")
    return data


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
        try:
            sandbox.mint(
                t["api"],
                t.get("scopes"),
                t.get("mode", "test"),
                t.get("account", "default"),
                t.get("name"),
                t["token"],
            )
        except (KeyError, ValueError) as exc:
            raise SeedError(f"tokens[{i}]: {exc}") from None
    for i, u in enumerate(data.get("users", [])):
        _known_api(sandbox, f"users[{i}]", u)
        try:
            save_user(sandbox.store, sandbox.ids, u)
        except (KeyError, ValueError) as exc:
            raise SeedError(f"users[{i}]: {exc}") from None
    for i, r in enumerate(data.get("resources", [])):
        _known_api(sandbox, f"resources[{i}]", r)
        api, name = r["api"], r.get("collection")
        if name not in sandbox.specs[api].resources:
            known = ", ".join(sandbox.specs[api].resources)
            raise SeedError(f"resources[{i}]: {api} has no collection {name!r}; known: {known}")
        res = sandbox.resources[api]
        owner = {"_account": r.get("account", "default"), "_mode": r.get("mode", "test")}
        fields = dict(r.get("data", {}))
        rid = fields.pop("id", None)
        record = res.create(name, owner, fields)
        if rid is not None:
            sandbox.store.delete(res.table(name), record["id"])
            sandbox.store.replace(res.table(name), {**record, "id": rid})
