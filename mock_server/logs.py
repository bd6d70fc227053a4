"""Logging shared by the single-process server (`cli.serve`) and each `--workers` process
(`workers.create_app`); it imports nothing of the sandbox, so both import it from below."""

from __future__ import annotations

import logging


class NoQueryStrings(logging.Filter):
    """uvicorn's access log prints whole URLs; query strings can hold one-time secrets (OAuth codes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], record.args[2].split("?", 1)[0], *record.args[3:])
        return True


def quiet_access_log() -> None:
    """Drop query strings from uvicorn's access log (call after uvicorn configured logging)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, NoQueryStrings) for f in access.filters):
        access.addFilter(NoQueryStrings())
