"""The snapshotter's SQL: verified (or rejected) snapshots by digest."""

from __future__ import annotations

import asyncpg

__all__ = ["known_status", "record"]


async def known_status(
    conn: asyncpg.Pool | asyncpg.Connection, digest: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT status, files, bytes, reason FROM snapshots WHERE digest = $1", digest
    )


async def record(
    conn: asyncpg.Connection, digest: str, status: str, files: int, size: int, reason: str | None
) -> None:
    await conn.execute(
        "INSERT INTO snapshots (digest, status, files, bytes, reason) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (digest) DO NOTHING",
        digest,
        status,
        files,
        size,
        reason,
    )
