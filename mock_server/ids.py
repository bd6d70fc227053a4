"""Id, secret and address generation, seedable so tests and golden files are stable."""

from __future__ import annotations

import os
import random
import secrets
import string
import threading
import uuid
from functools import cache

_ALNUM = string.ascii_lowercase + string.digits
_TOKEN_CHARS = string.ascii_letters + string.digits


@cache
def _table(alphabet: str) -> bytes:
    """Byte b -> alphabet[b % len(alphabet)] (the same mapping, and bias, as a modulo per byte)."""
    return bytes(ord(alphabet[b % len(alphabet)]) for b in range(256))


class IdGenerator:
    """Random by default (`secrets`); deterministic when given a seed (tests)."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng: random.Random = random.Random(seed) if seed is not None else secrets.SystemRandom()
        self._lock = threading.Lock()
        # request ids: unique labels, not secrets, one per request: a fast generator (no syscall)
        self._labels = random.Random(seed if seed is not None else os.urandom(16))

    def request_id(self) -> str:
        """`req_` and 16 of [a-z0-9]: a label for logs and support tickets, never a credential."""
        with self._lock:
            raw = self._labels.randbytes(16)
        return "req_" + raw.translate(_table(_ALNUM)).decode("ascii")

    def _choice(self, alphabet: str, n: int) -> str:
        if isinstance(self._rng, secrets.SystemRandom):  # one syscall, mapped in C by a byte table
            return os.urandom(n).translate(_table(alphabet)).decode("ascii")
        with self._lock:
            return "".join(self._rng.choice(alphabet) for _ in range(n))

    def short(self, prefix: str = "", n: int = 12) -> str:
        return prefix + self._choice(_ALNUM, n)

    def uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def secret(self, prefix: str = "", n: int = 32) -> str:
        return prefix + self._choice(_TOKEN_CHARS, n)

    def ipv4(self) -> str:
        """An address in 203.0.113.0/24 or 198.51.100.0/24 (documentation ranges, RFC 5737):
        made up, not secret, so from the fast generator (no syscall)."""
        with self._lock:
            n = self._labels.randrange(2 * 253)
        return f"{'203.0.113' if n < 253 else '198.51.100'}.{n % 253 + 2}"
