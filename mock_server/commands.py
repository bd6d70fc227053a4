"""The commands of the one CLI (`mock-server`, `python -m mock_server`) that live in higher layers.
This layer cannot import them, so each is named here as `module:function` and imported only when
run; a new command is one more line. Each function takes the arguments after the command's name."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

# name: (entry "module:function", one-line help, the extra that brings its dependencies)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "proxy": ("proxy.cli:run", "a validating proxy in front of a real backend", "api-sandbox"),
    "mcp": ("sandbox_mcp.cli:main", "an MCP server for coding agents", "api-sandbox[mcp]"),
    "conformance": (
        "conformance.cli:main",
        "check a backend against its API contract",
        "api-sandbox[conformance]",
    ),
    "load": ("load.cli:main", "the rate-limit verifier and the Locust workloads", "api-sandbox[load]"),
}


def entry(name: str) -> Callable[[list[str]], int]:
    module, _, func = COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), func)


def run(name: str, argv: list[str]) -> int:
    """Run command `name`; a dependency its extra brings, when absent, is one line and exit 2."""
    try:
        main = entry(name)
    except ModuleNotFoundError as exc:
        print(
            f"mock-server {name}: {exc.name} is not installed: pip install '{COMMANDS[name][2]}'",
            file=sys.stderr,
        )
        return 2
    return main(argv)
