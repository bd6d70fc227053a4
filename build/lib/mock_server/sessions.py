"""Session JWTs (Nurosentrix dashboard login, Nexos GitHub login): HS256 with a secret the
sandbox keeps in its store, so sessions survive a restart on the same data file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jwt

from .store import Record
from .tokens import Principal
from .users import TABLE as USERS

if TYPE_CHECKING:
    from .services import Services

SECRETS = "_mock:secrets"
SESSION_SECONDS = 24 * 3600
_ALGORITHMS = ["HS256"]


def _key(sandbox: Services) -> str:
    with sandbox.store.transaction():
        row = sandbox.store.get(SECRETS, "jwt")
        if row is None:
            row = sandbox.store.insert(SECRETS, {"id": "jwt", "value": sandbox.ids.secret("", 48)})
    return str(row["value"])


def issue(sandbox: Services, api: str, user: Record, ttl: int = SESSION_SECONDS) -> tuple[str, float]:
    now = int(sandbox.clock.now())
    claims = {"sub": user["id"], "api": api, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, _key(sandbox), algorithm="HS256"), float(now + ttl)


def verify(sandbox: Services, api: str, token: str) -> Record | None:
    """The session's user, or None for a bad, expired, tampered or foreign token."""
    if token.count(".") != 2 or len(token) > 4096:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            _key(sandbox),
            algorithms=_ALGORITHMS,
            options={"require": ["exp", "iat", "sub"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        return None
    now = sandbox.clock.now()  # the engine's clock, so /_mock/clock/advance expires sessions
    if claims.get("api") != api or not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        return None
    user = sandbox.store.get(USERS, str(claims["sub"]))
    return user if user is not None and user["api"] == api else None


def principal_for(sandbox: Services, api: str, user: Record) -> Principal:
    spec = sandbox.specs[api]
    return Principal(
        api=api,
        account=user["account"],
        mode=user.get("mode", "test"),
        scopes=frozenset(spec.scopes),
        subject=user["id"],
        user_id=user["id"],
    )
