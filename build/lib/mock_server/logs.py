"""Logging pieces shared by `serve` and its worker processes."""

from __future__ import annotations

import logging


class NoQueryStrings(logging.Filter):
    """uvicorn's access log prints whole URLs; query strings can hold one-time secrets (OAuth codes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], record.args[2].split("?", 1)[0], *record.args[3:])
        return True
