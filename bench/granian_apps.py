"""The ceiling and the sandbox as ASGI factories for Granian (a Rust HTTP server): the same
apps `python -m bench` serves on uvicorn, to measure what the server, rather than the app,
costs. Benchmark-only (Granian is not a dependency of the sandbox: `pip install granian`).

    BENCH_BODIES=DIR python -m granian --interface asgi --factory bench.granian_apps:ceiling
    BENCH_DATA=F BENCH_SEED=S python -m granian --interface asgi --factory bench.granian_apps:sandbox
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

from starlette.types import ASGIApp

from . import datafile
from .baselines import KINDS
from .baselines import ceiling as ceiling_app


def ceiling() -> ASGIApp:
    bodies = Path(os.environ["BENCH_BODIES"])
    app = ceiling_app(datafile.BASE_PATH, {k: (bodies / f"{k}.json").read_bytes() for k in KINDS})
    gc.freeze()
    return app


def sandbox() -> ASGIApp:
    """Built as `serve` builds it (TinyDB file store with group commit, the seed's token, the
    rate limiter with `$BENCH_RATE_WINDOW`), without the start-up banner and file lock."""
    from mock_server.app import SandboxApp
    from mock_server.sandbox import Sandbox, load_all
    from mock_server.seed import apply_seed, load_seed
    from mock_server.store_tinydb import TinyDBStore

    store = TinyDBStore(Path(os.environ["BENCH_DATA"]), group_commit=True, background_compaction=True)
    box = Sandbox(
        load_all([datafile.API]), store, rate_window=float(os.environ.get("BENCH_RATE_WINDOW", "0.001"))
    )
    apply_seed(box, load_seed(Path(os.environ["BENCH_SEED"])))
    store.commit()
    gc.freeze()
    return SandboxApp(box)
