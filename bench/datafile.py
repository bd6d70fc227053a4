"""Pre-built sandbox state: a TinyDB JSON file of N servers in one account, and a seed file
holding only the benchmark's token.

Seeding N servers through `--seed` costs three journal writes (each fsynced) per server, and
its time is measured separately; the scaling series writes the records directly in the layout
`mock_server/store_tinydb.py` reads (table `nurosentrix:servers`, TinyDB doc ids as string
keys, records carrying the hidden `_account`, `_mode`, `_since` fields), and the token is
minted by the sandbox itself from the seed file, so its hash and record are the engine's own.
"""

from __future__ import annotations

import json
import random
import string
import time
from pathlib import Path
from typing import Any

API = "nurosentrix"
BASE_PATH = "/nurosentrix/api/v1"
ACCOUNT = "bench"
TOKEN = "nsx_test_bench_0000000000000000000001"  # every scope (the seed gives no `scopes`)
TABLE = f"{API}:servers"
CREATE_BODY = {"name": "bench-web", "provider": "digitalocean", "region": "nyc1", "size": "s-1vcpu-1gb"}
_ALNUM = string.ascii_lowercase + string.digits
_PROVIDERS = ("digitalocean", "hetzner", "aws", "vultr")
_REGIONS = ("nyc1", "fra1", "ams3", "sgp1", "lon1")
_SIZES = ("s-1vcpu-1gb", "s-2vcpu-4gb", "s-4vcpu-8gb")


def server_records(n: int, seed: int = 1234) -> list[dict[str, Any]]:
    """N settled (`active`) servers of the bench account, oldest first, as the engine stores them."""
    rng = random.Random(seed)
    now = time.time()
    start = now - 86_400 - n  # one second apart, all older than any lifecycle delay
    records = []
    seen: set[str] = set()
    for i in range(n):
        while True:
            rid = "srv_" + "".join(rng.choice(_ALNUM) for _ in range(12))
            if rid not in seen:
                seen.add(rid)
                break
        t = start + i
        records.append(
            {
                "id": rid,
                "status": "active",
                "ip_address": f"203.0.113.{2 + i % 253}",
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
                "name": f"web-{i + 1}",
                "provider": _PROVIDERS[i % len(_PROVIDERS)],
                "region": _REGIONS[i % len(_REGIONS)],
                "size": _SIZES[i % len(_SIZES)],
                "_account": ACCOUNT,
                "_mode": "test",
                "_since": t,
            }
        )
    return records


def write_tinydb_file(path: Path, n: int) -> list[str]:
    """Write a TinyDB file of N servers; return their ids (in creation order)."""
    records = server_records(n)
    doc = {TABLE: {str(i + 1): r for i, r in enumerate(records)}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    return [r["id"] for r in records]


def write_token_seed(path: Path) -> None:
    """A seed file with only the benchmark token (JSON is valid YAML)."""
    seed = {"tokens": [{"api": API, "token": TOKEN, "account": ACCOUNT, "name": "bench"}]}
    path.write_text(json.dumps(seed, indent=1), encoding="utf-8")


def write_full_seed(path: Path, n: int) -> None:
    """A seed file with the token and N servers: what `--seed` alone would need (slow path)."""
    resources = [
        {
            "api": API,
            "collection": "servers",
            "account": ACCOUNT,
            "mode": "test",
            "data": {k: r[k] for k in ("id", "name", "provider", "region", "size")},
        }
        for r in server_records(n)
    ]
    seed = {
        "tokens": [{"api": API, "token": TOKEN, "account": ACCOUNT, "name": "bench"}],
        "resources": resources,
    }
    path.write_text(json.dumps(seed), encoding="utf-8")
