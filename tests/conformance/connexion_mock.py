"""connexion's stateless `--mock=all`, for comparison: the suite run against a mock that only
replays the spec's examples.

connexion 3.3 validates specs against OpenAPI 3.0 only, so the 3.1 spec is first lowered to an
equivalent 3.0 document (nullable types, single examples, exclusive bounds, const).

    python -m tests.conformance.connexion_mock cloudnexus 8090   # serves http://127.0.0.1:8090/v1

Credentials: any bearer token is accepted (the mock keeps no accounts).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.conformance.connexion_mock"  # importable by connexion (run from ROOT)


def lower(node: Any) -> Any:
    """OpenAPI 3.1 / JSON Schema 2020-12 → OpenAPI 3.0 (what connexion 3.3 accepts)."""
    if isinstance(node, list):
        return [lower(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: lower(v) for k, v in node.items()}
    t = out.get("type")
    if isinstance(t, list):
        kinds = [k for k in t if k != "null"]
        out["type"] = kinds[0] if kinds else "string"
        if "null" in t:
            out["nullable"] = True
    if isinstance(out.get("examples"), list):  # a schema's examples (a media type's is a map)
        examples = out.pop("examples")
        if examples and "example" not in out:
            out["example"] = examples[0]
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out.get(bound), bool):
            out[plain] = out.pop(bound)
            out[bound] = True
    return out


def accept_any(token: str) -> dict[str, Any]:
    return {"sub": "mock", "token": token}


def accept_any_key(key: str, required_scopes: Any = None) -> dict[str, Any]:
    return {"sub": "mock"}


def lowered_spec(api: str, directory: Path) -> Path:
    doc = yaml.safe_load((ROOT / "specs" / f"{api}.yaml").read_text())
    doc = lower(doc)
    doc["openapi"] = "3.0.3"
    doc.get("info", {}).pop("summary", None)
    doc.pop("webhooks", None)
    # connexion needs a function to check credentials: accept any, as a stateless mock does.
    for scheme in (doc.get("components") or {}).get("securitySchemes", {}).values():
        if scheme.get("type") == "http":
            scheme["x-bearerInfoFunc"] = f"{MODULE}.accept_any"
        elif scheme.get("type") == "apiKey":
            scheme["x-apikeyInfoFunc"] = f"{MODULE}.accept_any_key"
    path = directory / f"{api}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def start(api: str, port: int, directory: Path, log: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    spec = lowered_spec(api, directory)
    cmd = [
        sys.executable,
        "-m",
        "connexion",
        "run",
        str(spec),
        "--mock=all",
        "-p",
        str(port),
        "-H",
        "127.0.0.1",
    ]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=log)


def main(api: str, port: int) -> int:
    """Serve until stopped; SIGTERM or Ctrl-C stops the connexion child too (and waits for it)."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with tempfile.TemporaryDirectory() as tmp:
        proc = start(api, port, Path(tmp), log=None)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
