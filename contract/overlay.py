"""`serve --rate-limits FILE`: a rate-limit overlay (what `load fingerprint --write-overlay`
writes) replaces an API's buckets and which operations count in them:

    {"rate-limits": {"<api>": {"buckets": {"<name>": {"limit": 20, "window": 2,
        "algorithm": "token-bucket", "burst": 20}}, "operations": {"<operationId>": ["<name>"]}}}}

Operations it does not name keep the spec's buckets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError
from .model import Bucket, Contract

ALGORITHMS = ("sliding-window", "fixed-window", "token-bucket")


def read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SpecError(f"{path}: cannot read the rate-limit overlay ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rate-limits"), dict):
        raise SpecError(f"{path}: a rate-limit overlay holds {{'rate-limits': {{api: ...}}}}")
    return doc["rate-limits"]


def apply(spec: Contract, overlay: dict[str, Any]) -> None:
    """Apply the overlay's entry for `spec` (if any) in place."""
    entry = overlay.get(spec.name)
    if not entry:
        return
    buckets = {}
    for name, b in (entry.get("buckets") or {}).items():
        algorithm = b.get("algorithm", "sliding-window")
        if algorithm not in ALGORITHMS or int(b.get("limit", 0)) < 1 or float(b.get("window", 0)) <= 0:
            raise SpecError(f"rate-limit overlay: bucket {name!r} of {spec.name} is not a valid limit: {b}")
        buckets[name] = Bucket(
            name, int(b["limit"]), float(b["window"]), algorithm=algorithm, burst=b.get("burst")
        )
    spec.buckets.update(buckets)
    for op_id, names in (entry.get("operations") or {}).items():
        op = spec.by_id(op_id)
        if op is None or any(n not in spec.buckets for n in names):
            raise SpecError(
                f"rate-limit overlay: {spec.name} has no operation {op_id!r} or bucket in {names}"
            )
        op.buckets = tuple(spec.buckets[n] for n in names)
