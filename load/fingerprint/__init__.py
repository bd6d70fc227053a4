"""Rate-limit fingerprinting: learn a backend's limiter from outside (`probe`), judge its
headers (`honesty`) and the whole against the documents (`verdict`); `run` is the CLI glue."""

from .model import ALGORITHMS, Hint, Obs, Shape
from .probe import Budget, Prober

__all__ = ["ALGORITHMS", "Budget", "Hint", "Obs", "Prober", "Shape"]
