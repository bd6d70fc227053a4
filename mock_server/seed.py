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


def apply_seed(sandbox: Sandbox, data: dict[str, Any]) -> None:
    for i, t in enumerate(data.get("tokens", [])):
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
        if u.get("api") not in sandbox.specs:
            raise SeedError(f"users[{i}]: unknown api {u.get('api')!r}")
        try:
            save_user(sandbox.store, sandbox.ids, u)
        except (KeyError, ValueError) as exc:
            raise SeedError(f"users[{i}]: {exc}") from None
    for i, r in enumerate(data.get("resources", [])):
        api, name = r.get("api"), r.get("collection")
        if api not in sandbox.specs or name not in sandbox.specs[api].resources:
            raise SeedError(f"resources[{i}]: unknown api/collection {api!r}/{name!r}")
        res = sandbox.resources[api]
        owner = {"_account": r.get("account", "default"), "_mode": r.get("mode", "test")}
        fields = dict(r.get("data", {}))
        rid = fields.pop("id", None)
        record = res.create(name, owner, fields)
        if rid is not None:
            sandbox.store.delete(res.table(name), record["id"])
            sandbox.store.replace(res.table(name), {**record, "id": rid})
