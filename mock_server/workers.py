"""`serve --workers N`: uvicorn starts N processes; each builds its app here from the settings
the parent put in the environment, over the one shared state (see `shared.py` and
`TinyDBStore(shared=True)`; with `--store redis://`, `store_redis.py`). The parent has already
opened the store, applied the seed and minted the start-up tokens, so a worker only opens what
is there."""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from .app import SandboxApp, with_cors
from .lockfile import hold_as_worker
from .logs import quiet_access_log

ENV = "MOCK_SERVER_WORKER_SETTINGS"
_WORKER_LOCK: int | None = None


def export_settings(settings: dict[str, Any]) -> None:
    os.environ[ENV] = json.dumps(settings)


def create_app() -> ASGIApp:
    """The uvicorn factory (`mock_server.workers:create_app`) a worker process calls."""
    from .sandbox import Sandbox, load_all
    from .store import Store
    from .store_tinydb import TinyDBStore

    s = json.loads(os.environ[ENV])
    global _WORKER_LOCK
    store: Store
    if s.get("store"):  # Redis: the worker is one more replica
        from .store_redis import RedisStore

        store = RedisStore(s["store"])
    else:
        _WORKER_LOCK = hold_as_worker(Path(s["data"]))  # a new serve refuses while this process lives
        store = TinyDBStore(s["data"], shared=True, group_commit=True)
    specs = load_all(s["apis"])
    if s.get("rate_limits"):
        from contract import overlay

        for spec in specs:
            overlay.apply(spec, overlay.read(Path(s["rate_limits"])))
    sandbox = Sandbox(
        specs,
        store,
        rate_window=s["rate_window"],
        rate_limit=s["rate_limit"],
        async_delay=s["async_delay"],
        run_dir=Path(s["run_dir"]) if s["run_dir"] else None,
    )
    quiet_access_log()
    app = with_cors(SandboxApp(sandbox, s["admin_token"]), s.get("cors"))
    gc.freeze()  # as `serve` does: collections leave the loaded state alone
    return app
