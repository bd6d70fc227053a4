"""mypy lets through only third-party modules without stubs: a missing project module (one moved
or renamed) is an error, as it was not under the global `ignore_missing_imports` it replaces."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_only_stubless_third_party_modules_may_be_missing() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert "ignore_missing_imports" not in config
    for override in config.get("overrides", []):
        if not override.get("ignore_missing_imports"):
            continue
        for name in override["module"]:
            top = name.removesuffix(".*").split(".")[0]
            assert not (ROOT / top).exists() and not (ROOT / f"{top}.py").exists(), name  # not ours
            spec = importlib.util.find_spec(top)
            assert spec is not None and spec.origin is not None, name  # installed third-party
            where = Path(spec.origin).parent
            assert "site-packages" in where.parts, (name, where)
            assert not (where / "py.typed").exists(), f"{name} ships its types: no override needed"
