"""Bearer tokens: minted with the API's prefix, stored only as a SHA-256 hash, revocable."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .ids import IdGenerator
from .store import Record, Store

TABLE = "_mock:tokens"
REVOKED = "_mock:revoked"  # tombstones (id, masked, when, how), so a 401 can say "revoked at ..."
KNOWN_TOKENS = 10_000  # valid tokens remembered in memory
TOMBSTONES, PRUNE_EVERY = 1_000, 100  # the newest kept; pruned every so many revocations
MODES = ("test", "live")
_TOKEN_SHAPE = re.compile(r"[\x21-\x7e]{8,256}")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenancy key (api, account, mode) and what the caller may do."""

    api: str
    account: str
    mode: str
    scopes: frozenset[str]
    subject: str  # token id, API key id or user id: the rate-limit key
    user_id: str | None = None

    @property
    def owner(self) -> dict[str, str]:
        """The hidden fields that tie a stored record to this principal's tenancy."""
        return {"_account": self.account, "_mode": self.mode}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mask(token: str) -> str:
    """`nsx_test_Ab…9xYz`: enough to recognise a token, never enough to use it."""
    return f"{token[: max(4, len(token) - 28)]}…{token[-4:]}"


class TokenService:
    """Mint, authenticate, list and revoke the sandbox's bearer tokens."""

    def __init__(self, store: Store, ids: IdGenerator, clock: Clock) -> None:
        self.store, self.ids, self.clock = store, ids, clock
        # token -> principal of tokens seen valid (no hash on the hot path); emptied whenever the
        # token table changes (a mint or revoke here, or in another process sharing the store)
        self._known: dict[str, Principal] = {}
        self._known_version = -1
        self._revoked = 0  # revocations by this process (tombstones pruned every PRUNE_EVERY)

    def mint(
        self,
        api: str,
        prefix: str,
        scopes: list[str],
        mode: str = "test",
        account: str = "default",
        name: str | None = None,
        value: str | None = None,
    ) -> tuple[str, Record]:
        """Create a token; `value` fixes it (seed files), else a random one with `prefix`."""
        token = value if value is not None else self.ids.secret(prefix, 32)
        digest = token_hash(token)
        rid = f"tok_{digest[:16]}"
        record = {
            "id": rid,
            "api": api,
            "hash": digest,
            "masked": mask(token),
            "scopes": sorted(set(scopes)),
            "mode": mode,
            "account": account,
            "name": name,
            "created_at": self.clock.isoformat(),
        }
        with self.store.transaction():
            self.store.replace(TABLE, record)
            self.store.delete(REVOKED, rid)
        return token, record

    def known(self, api: str, token: str) -> Principal | None:
        """The principal of a token this process has seen valid (no store access: it may have
        been revoked since; `authenticate` tells)."""
        known = self._known.get(token)
        return known if known is not None and known.api == api else None

    def authenticate(self, api: str, token: str) -> Principal | None:
        version = self.store.version(TABLE)
        if version != self._known_version:
            self._known.clear()
            self._known_version = version
        known = self._known.get(token)
        if known is not None:
            return known if known.api == api else None
        if not _TOKEN_SHAPE.fullmatch(token):
            return None
        digest = token_hash(token)
        record = self.store.get(TABLE, f"tok_{digest[:16]}")
        if record is None or not hmac.compare_digest(record["hash"], digest) or record["api"] != api:
            return None
        principal = Principal(
            api=api,
            account=record["account"],
            mode=record["mode"],
            scopes=frozenset(record["scopes"]),
            subject=record["id"],
        )
        if len(self._known) >= KNOWN_TOKENS:
            self._known.clear()
        self._known[token] = principal
        return principal

    @staticmethod
    def token_id(token_or_id: str) -> str:
        """The `tok_` id of a token given by value or by id."""
        return token_or_id if token_or_id.startswith("tok_") else f"tok_{token_hash(token_or_id)[:16]}"

    def revoke(self, token_or_id: str, how: str = "revoked") -> bool:
        """Forget the token; keep a tombstone (never the hash) so the request log can say why
        its next use is a 401. `how` words it: "revoked", "revoked by a reset", ..."""
        rid = self.token_id(token_or_id)
        with self.store.transaction():
            record = self.store.get(TABLE, rid)
            if record is None or not self.store.delete(TABLE, rid):
                return False
            self.store.replace(
                REVOKED,
                {
                    "id": rid,
                    "api": record["api"],
                    "masked": record["masked"],
                    "name": record.get("name"),
                    "revoked_at": self.clock.isoformat(),
                    "how": how,
                },
            )
            self._revoked += 1
            if self._revoked % PRUNE_EVERY == 0:
                self._prune()
        return True

    def _prune(self) -> None:
        """Keep the newest `TOMBSTONES` tombstones: memory stays flat however many tokens are
        revoked (an older revoked token's next use is a plain "unknown token")."""
        stale = list(self.store.scan(REVOKED))[:-TOMBSTONES]
        for old in stale:
            self.store.delete(REVOKED, old["id"])

    def list(self, api: str | None = None) -> list[dict[str, Any]]:
        rows = self.store.find(TABLE, **({"api": api} if api else {}))
        return [{k: v for k, v in r.items() if k != "hash"} for r in rows]

    def page(self, api: str | None, offset: int, limit: int) -> tuple[builtins.list[dict[str, Any]], int]:
        """Tokens [offset:offset + limit] in minting order (masked), and how many there are:
        50,000 tokens listed whole were 17 MB and held the server 0.6-0.75 s."""
        with self.store.reading():
            rows, total = self.store.window(TABLE, offset, offset + limit, **({"api": api} if api else {}))
            return [{k: v for k, v in r.items() if k != "hash"} for r in rows], total
