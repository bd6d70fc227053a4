"""Conformance suite: point it at a backend and learn, in one run, every way it breaks its contract."""

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from .cli import main as _main

    return _main(argv)
