"""The image builder's SQL: resolved environments by name."""

from __future__ import annotations

import asyncpg

__all__ = ["record"]


async def record(
    conn: asyncpg.Connection,
    name: str,
    status: str,
    digest: str | None,
    python: str | None,
    reason: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO environments (name, status, digest, python, reason)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET status = $2,"
        " digest = $3, python = $4, reason = $5",
        name,
        status,
        digest,
        python,
        reason,
    )
