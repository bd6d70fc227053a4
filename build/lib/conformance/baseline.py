"""A baseline of known violations (`--write-baseline FILE`, then `--baseline FILE`): a team adopts
the suite on a backend with known deviations and fails only on new ones, watching the list shrink.

The file is JSON, one entry per finding: check, operation, key (the finding's stable identity:
the same problem recurring with other values keeps its key) and message (for people)."""

from __future__ import annotations

import json
from pathlib import Path

from .report import redact
from .results import Results

VERSION = 1


class BaselineError(ValueError):
    pass


def read(path: str) -> frozenset[tuple[str, str, str]]:
    try:
        data = json.loads(Path(path).read_text())
        entries = data["violations"] if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise BaselineError(f"{path}: not a baseline (no 'violations' list)")
        return frozenset((str(e["check"]), str(e["operation"]), str(e["key"])) for e in entries)
    except OSError as exc:
        raise BaselineError(f"cannot read the baseline {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"{path}: not a baseline written by --write-baseline ({exc})") from None


def write(path: str, results: Results, secrets: dict[str, str]) -> None:
    entries = [
        {
            "check": v.check,
            "operation": v.operation,
            "key": redact(v.key, secrets),
            "message": redact(v.message, secrets),
        }
        for v in results.violations
        if v.inferred is None
    ]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": VERSION, "api": results.api, "profile": results.profile, "violations": entries}
    Path(path).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
