"""CloudNexus (.com) behaviour the spec cannot declare: the engine's default port (the versions
each engine offers are in the spec's CreateDatabaseRequest)."""

from __future__ import annotations

from ..calls import Call, Reply

# engine: default port (inferred: the document names only the engines)
PORTS: dict[str, int] = {"postgresql": 5432, "mysql": 3306, "redis": 6379, "mongodb": 27017}


def create_database(call: Call) -> Reply:
    port = PORTS[call.body["engine"]]
    record = call.resources.create("databases", call.owner, {**call.body, "port": port})
    return Reply(201, call.resources.public("databases", record))
