"""The build backend: setuptools' own, plus one step for wheels. In the source tree the project's
packages keep their short names (`contract`, `conformance`, `load`, `proxy`), but names that generic
must not land in an app's site-packages beside its own modules. So the built wheel ships them under
`api_sandbox.` (`api_sandbox.contract`, ...), with their imports rewritten to match; `mock_server` and
`sandbox_mcp` stay top-level (specific names; `python -m mock_server` and the pytest plugin use them).
Editable installs (`pip install -e .`, the project's own .venv) keep the source layout unchanged."""

from __future__ import annotations

import ast
import base64
import hashlib
import re
import warnings
import zipfile
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook is setuptools' own)

PREFIX = "api_sandbox"
MOVED = ("contract", "conformance", "judge", "load", "proxy")
_NAMES = "|".join(MOVED)
_RULES = [
    # from contract import X / from contract.model import X
    (re.compile(rf"^(\s*)from ({_NAMES})(?=[.\s])", re.M), rf"\1from {PREFIX}.\2"),
    # import conformance.report as report
    (re.compile(rf"^(\s*)import ({_NAMES})((?:\.\w+)*) as ", re.M), rf"\1import {PREFIX}.\2\3 as "),
    # import contract
    (re.compile(rf"^(\s*)import ({_NAMES})\s*$", re.M), rf"\1from {PREFIX} import \2"),
    # jinja2.PackageLoader("conformance", ...), [sys.executable, "-m", "load", ...]
    (re.compile(rf"PackageLoader\(\"({_NAMES})\""), rf'PackageLoader("{PREFIX}.\1"'),
    (re.compile(rf"\"-m\", \"({_NAMES})\""), rf'"-m", "{PREFIX}.\1"'),
    # mock_server/commands.py: "proxy.cli:run" (an entry point, imported by name)
    (re.compile(rf"\"({_NAMES})\.(\w+):(\w+)\""), rf'"{PREFIX}.\1.\2:\3"'),
]
_INIT = (
    '"""The API sandbox\'s suites and contract, shipped under one name that cannot collide with an '
    'app\'s own modules\n(the source tree calls them `contract`, `conformance`, `load`, `proxy`)."""\n'
)


def build_wheel(
    wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None
) -> str:
    name = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    remap_wheel(Path(wheel_directory) / name)
    return name


def build_editable(
    wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None
) -> str:
    """setuptools' own, minus its banner about flat layouts ("Editable installation. Please be
    careful with folders in your working directory..."): in this project's checkout those folders
    are the packages themselves, and `make serve` should start with the sandbox's own lines."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Editable installation")
        return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)


def rewrite_source(text: str, where: str = "<source>") -> str:
    """`text` with every import of a moved package pointed at its `api_sandbox.` name; any import
    form the rules do not know is an error here, at build time, not in an app's test run."""
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    for node in ast.walk(ast.parse(text, where)):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        left = [n for n in names if n.split(".")[0] in MOVED]
        if left:
            raise ValueError(f"{where}:{node.lineno}: import of {left} not rewritten for the wheel")
    return text


def _moved(path: str) -> str:
    return f"{PREFIX}/{path}" if path.split("/")[0] in MOVED else path


def remap_wheel(wheel: Path) -> None:
    """Rewrite `wheel` in place: the moved packages under `api_sandbox/`, their imports, the entry
    points and top_level.txt to match, and a fresh RECORD."""
    with zipfile.ZipFile(wheel) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    out: list[tuple[str, bytes]] = [(f"{PREFIX}/__init__.py", _INIT.encode())]
    record = None
    for info, data in entries:
        path = info.filename
        if path.endswith(".dist-info/RECORD"):
            record = path
            continue
        if path.endswith(".py"):
            data = rewrite_source(data.decode(), path).encode()
        elif path.endswith(".dist-info/entry_points.txt"):
            data = re.sub(rf"= ({_NAMES})\.", rf"= {PREFIX}.\1.", data.decode()).encode()
        elif path.endswith(".dist-info/top_level.txt"):
            tops = {line for line in data.decode().split() if line not in MOVED} | {PREFIX}
            data = "".join(f"{t}\n" for t in sorted(tops)).encode()
        out.append((_moved(path), data))
    assert record is not None, f"{wheel} has no RECORD"
    lines = []
    for path, data in out:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append(f"{path},sha256={digest},{len(data)}\n")
    lines.append(f"{record},,\n")
    out.append((record, "".join(lines).encode()))
    tmp = wheel.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
        for path, data in out:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            dst.writestr(info, data, zipfile.ZIP_DEFLATED)
    tmp.replace(wheel)
