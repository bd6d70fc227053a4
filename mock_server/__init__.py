"""A stateful sandbox of four vendor APIs, driven by their OpenAPI specs.

Its names load on first use: the pytest plugin (`mock_server.pytest_plugin`), which pytest
imports in every test run of an app that installed the sandbox, costs that run nothing more."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import SandboxApp
    from .sandbox import Sandbox, load_all

__all__ = ["Sandbox", "SandboxApp", "load_all"]


def __getattr__(name: str) -> Any:
    if name == "SandboxApp":
        from .app import SandboxApp

        return SandboxApp
    if name in ("Sandbox", "load_all"):
        from . import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module 'mock_server' has no attribute {name!r}")
