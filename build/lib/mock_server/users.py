"""Users (people who log in: Nurosentrix email/password, Nexos GitHub accounts), per API."""

from __future__ import annotations

from typing import Any

import bcrypt

from .ids import IdGenerator
from .store import Record, Store

TABLE = "_mock:users"
MAX_PASSWORD_BYTES = 72  # bcrypt's own limit: longer inputs raise in bcrypt >= 5


def save_user(store: Store, ids: IdGenerator, user: dict[str, Any]) -> Record:
    password = user.get("password")
    record = {
        "id": user.get("id") or ids.short("usr_"),
        "api": user["api"],
        "account": user.get("account", "default"),
        "mode": user.get("mode", "test"),
        "email": user.get("email"),
        "login": user.get("login"),
        "name": user.get("name"),
        "avatar_url": user.get("avatar_url"),
    }
    if password is not None:
        raw = str(password).encode()
        if len(raw) > MAX_PASSWORD_BYTES:
            raise ValueError(f"password longer than {MAX_PASSWORD_BYTES} bytes")
        record["password_hash"] = bcrypt.hashpw(raw, bcrypt.gensalt(rounds=10)).decode()
    return store.replace(TABLE, record)


def find_user(store: Store, api: str, **equals: Any) -> Record | None:
    rows = store.find(TABLE, api=api, **equals)
    return rows[0] if rows else None


def check_password(user: Record, password: str) -> bool:
    raw = password.encode()
    if "password_hash" not in user or len(raw) > MAX_PASSWORD_BYTES:
        return False
    return bcrypt.checkpw(raw, user["password_hash"].encode())
