"""A stateful sandbox of four vendor APIs, driven by their OpenAPI specs."""

from .app import SandboxApp
from .sandbox import Sandbox, load_all

__all__ = ["Sandbox", "SandboxApp", "load_all"]
