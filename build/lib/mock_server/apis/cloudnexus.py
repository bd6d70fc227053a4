"""CloudNexus (.com) behaviour the spec cannot declare: which engine versions a managed
database cluster may run, and the engine's default port."""

from __future__ import annotations

from ..calls import Call, Reply
from ..errors import ApiError, Problem

# engine: (versions offered, default port). Inferred: the document names only the engines and 15.4.
ENGINES: dict[str, tuple[tuple[str, ...], int]] = {
    "postgresql": (("13", "14", "15", "16"), 5432),
    "mysql": (("8.0", "8.4"), 3306),
    "redis": (("7.0", "7.2"), 6379),
    "mongodb": (("6.0", "7.0"), 27017),
}


def _offered(version: str, offered: tuple[str, ...]) -> bool:
    """`15.4` runs under major `15`; `8.0.36` under `8.0`."""
    return any(version == v or version.startswith(v + ".") for v in offered)


def create_database(call: Call) -> Reply:
    engine, version = call.body["engine"], call.body["version"]
    offered, port = ENGINES[engine]
    if not _offered(version, offered):
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            f"Unsupported {engine} version {version}.",
            [Problem("version", f"{engine} offers {', '.join(offered)}")],
        )
    record = call.resources.create("databases", call.owner, {**call.body, "port": port})
    return Reply(201, call.resources.public("databases", record))
