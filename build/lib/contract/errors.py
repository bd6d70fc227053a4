"""The one error of the contract layer."""

from __future__ import annotations


class SpecError(Exception):
    """A spec cannot be read, or its extensions are not what the sandbox and the suites need.

    The engine refuses to start on it; the suites report it as a usage error (exit 2)."""
