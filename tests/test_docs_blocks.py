"""Docs that cannot rot: every ```sh block of README.md and docs/**.md runs, in bash with
`set -euo pipefail`, against a live sandbox started for it.

- A line starting the sandbox in the background (`make serve ARGS="..." &`, `python -m
  mock_server serve ... &`) is the sandbox the test starts with those options on a free port;
  `127.0.0.1:8080` / `localhost:8080` in the block point at that port. A block with no such
  line gets a sandbox with `--memory`.
- `curl` fails on an HTTP error answer (`--fail-with-body`), so a walkthrough step the sandbox
  refuses fails the block; blocks check what they promise with `jq -e`.
- A block that cannot run here (a staging URL, a minutes-long run) is preceded by
  `<!-- illustrative: why -->`, and is only checked to say why.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import ROOT, live_sandbox

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
ILLUSTRATIVE = re.compile(r"<!--\s*illustrative:\s*(.*?)\s*-->\s*$", re.S)
SERVE = re.compile(
    r"^\s*(?:make serve(?: ARGS=\"(?P<margs>[^\"]*)\")?"
    r"|(?:\.venv/bin/)?python -m mock_server serve(?P<args>[^&#\n]*))"
    r"\s*&\s*(?:#.*)?$",
    re.M,
)
SHELLS = {"sh", "bash", "shell"}
BLOCK_SECONDS = 240


@dataclass
class Block:
    doc: Path
    line: int
    code: str
    illustrative: str | None

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            if m.group(1) not in SHELLS:
                continue
            before = text[: m.start()].rstrip("\n")
            why = ILLUSTRATIVE.search(before.rsplit("\n", 1)[-1])
            found.append(
                Block(doc, text.count("\n", 0, m.start()) + 1, m.group(2), why.group(1) if why else None)
            )
    return found


BLOCKS = blocks()


def test_the_docs_have_shell_blocks_and_most_run() -> None:
    runnable = [b for b in BLOCKS if b.illustrative is None]
    assert len(runnable) >= 8 and len(runnable) > 2 * (len(BLOCKS) - len(runnable)), [b.id for b in BLOCKS]
    for b in BLOCKS:
        assert b.illustrative is None or len(b.illustrative) > 10, f"{b.id}: say why it cannot run"


def _serve_args(code: str) -> tuple[list[str], str]:
    """The sandbox options a block starts the sandbox with, and the block without that line."""
    args: list[str] = []
    for m in SERVE.finditer(code):
        args = shlex.split(m.group("margs") or m.group("args") or "")
    code = SERVE.sub(": # (the test started this sandbox)", code)
    drop = {"--port", "--host"}
    kept, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in drop:
            skip = True
        else:
            kept.append(a)
    return kept or ["--memory"], code


@pytest.fixture(scope="module")
def shims(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`curl` that fails on an HTTP error answer, ahead of the real one on PATH."""
    folder = tmp_path_factory.mktemp("shims")
    real = subprocess.run(["sh", "-c", "command -v curl"], capture_output=True, text=True).stdout.strip()
    curl = folder / "curl"
    curl.write_text(f'#!/bin/sh\nexec {real} --fail-with-body "$@"\n')
    curl.chmod(0o755)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.illustrative is None], ids=lambda b: b.id)
def test_shell_block_runs(block: Block, shims: Path, tmp_path: Path) -> None:
    for tool in ("jq", "openssl", *(["redis-server"] if "redis-server" in block.code else [])):
        if shutil.which(tool) is None:
            hint = f"`make system-tools`; as root: apt-get install {tool}"
            pytest.skip(f"DOCS BLOCKS NOT RUN: {tool} is absent ({hint})")
    args, code = _serve_args(block.code)
    if "--data" not in args and "--memory" not in args:
        args = [*args, "--data", str(tmp_path / "sandbox.json")]
    with live_sandbox(*args) as base:
        port = base.rsplit(":", 1)[1]
        code = re.sub(r"\b(127\.0\.0\.1|localhost):8080\b", f"127.0.0.1:{port}", code)
        env = {
            **os.environ,
            "PATH": f"{shims}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "SANDBOX_URL": base,
        }
        out = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_SECONDS,
        )
    assert out.returncode == 0, (
        f"{block.id} failed ({out.returncode}):\n{code}\n"
        f"--- stdout\n{out.stdout[-3000:]}\n--- stderr\n{out.stderr[-3000:]}"
    )
