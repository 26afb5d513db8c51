"""API bearer tokens: created once, shown once, stored only as a SHA-256.

Tokens are 256 random bits, so a plain SHA-256 (not a slow password hash) is enough to make a
leaked table useless, and lets a request be checked with one indexed lookup. Scopes nest:
``admin`` can do what ``submit`` can, which can do what ``read`` can.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any, Literal, get_args

import asyncpg
from pydantic import BaseModel

from services.runtime.errors import PermanentError

__all__ = [
    "SCOPES",
    "Scope",
    "ScopeRefused",
    "TokenInfo",
    "TokenRefused",
    "covers",
    "create_token",
    "hash_token",
    "list_tokens",
    "revoke_token",
    "verify_token",
]

Scope = Literal["read", "submit", "admin"]
SCOPES: tuple[Scope, ...] = get_args(Scope)
_RANK: dict[str, int] = {scope: i for i, scope in enumerate(SCOPES)}
PREFIX = "hr_"


class TokenRefused(PermanentError):
    """The token is missing, unknown or revoked (HTTP 401)."""


class ScopeRefused(TokenRefused):
    """The token is valid but lacks the scope the request needs (HTTP 403)."""


class TokenInfo(BaseModel):
    """What is known of a token, never the token itself."""

    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def covers(granted: list[str], needed: Scope) -> bool:
    """True when any granted scope is at least ``needed``."""
    return any(_RANK.get(g, -1) >= _RANK[needed] for g in granted)


def _info(row: asyncpg.Record) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        name=row["name"],
        scopes=list(row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def create_token(conn: Any, name: str, scopes: list[str]) -> tuple[str, TokenInfo]:
    """A new token (returned once, in clear) and its record."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenRefused(
            f"unknown scopes {unknown}; give one or more of: {', '.join(SCOPES)}"
            if unknown
            else f"a token needs at least one scope: {', '.join(SCOPES)}"
        )
    token = PREFIX + secrets.token_urlsafe(32)
    row = await conn.fetchrow(
        "INSERT INTO api_tokens (id, name, token_hash, scopes) VALUES ($1, $2, $3, $4) RETURNING *",
        uuid.uuid4().hex[:12],
        name,
        hash_token(token),
        sorted(set(scopes), key=SCOPES.index),
    )
    return token, _info(row)


async def list_tokens(conn: Any) -> list[TokenInfo]:
    rows = await conn.fetch("SELECT * FROM api_tokens ORDER BY created_at")
    return [_info(r) for r in rows]


async def revoke_token(conn: Any, token_id: str) -> bool:
    """Revoke by id; False when no live token has that id."""
    result = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", token_id
    )
    return bool(result.endswith(" 1"))


async def verify_token(conn: Any, token: str | None, needed: Scope) -> TokenInfo:
    """The live token's record if it grants ``needed``; ``TokenRefused`` saying why not."""
    if not token:
        raise TokenRefused(
            "missing bearer token: send 'Authorization: Bearer <token>' (create one with "
            "`headrace tokens create NAME --scope read|submit|admin`)"
        )
    row = await conn.fetchrow("SELECT * FROM api_tokens WHERE token_hash = $1", hash_token(token))
    if row is None:
        raise TokenRefused("unknown API token; create one with `headrace tokens create`")
    info = _info(row)
    if info.revoked_at is not None:
        raise TokenRefused(f"API token {info.id!r} was revoked; create a new one")
    if not covers(info.scopes, needed):
        raise ScopeRefused(
            f"API token {info.id!r} has scopes {info.scopes}; this request needs {needed!r}"
        )
    return info
