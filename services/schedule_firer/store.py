"""The schedule firer's SQL: due schedules, the firings record, what a datastore held."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "claim",
    "due_ids",
    "known_objects",
    "record_firing",
    "remember_objects",
    "set_next_due",
]


async def due_ids(pool: asyncpg.Pool, now: datetime, limit: int) -> list[str]:
    """Active schedules whose next due instant has come, earliest first."""
    rows = await pool.fetch(
        "SELECT id FROM schedules WHERE status = 'Active' AND next_due <= $1"
        " ORDER BY next_due LIMIT $2",
        now,
        limit,
    )
    return [r["id"] for r in rows]


async def claim(conn: asyncpg.Connection, schedule_id: str, now: datetime) -> Any:
    """Lock the schedule if it is still active and due; None when another firer holds it or
    already moved it on (the row lock plus the re-check make each due time fire once)."""
    return await conn.fetchrow(
        "SELECT * FROM schedules WHERE id = $1 AND status = 'Active' AND next_due <= $2"
        " FOR UPDATE SKIP LOCKED",
        schedule_id,
        now,
    )


async def set_next_due(
    conn: asyncpg.Connection,
    schedule_id: str,
    next_due: datetime | None,
    *,
    polled_at: datetime | None = None,
    disable: bool = False,
) -> None:
    await conn.execute(
        "UPDATE schedules SET next_due = $2, polled_at = COALESCE($3, polled_at),"
        " status = CASE WHEN $4 THEN 'Disabled' ELSE status END, updated_at = now()"
        " WHERE id = $1",
        schedule_id,
        next_due,
        polled_at,
        disable,
    )


async def record_firing(
    conn: asyncpg.Connection,
    schedule_id: str,
    occurrence: str,
    due_at: datetime,
    *,
    run_id: str | None = None,
    skipped_reason: str | None = None,
) -> bool:
    """Record that ``occurrence`` was acted on; False if it already was (it then starts
    nothing)."""
    inserted = await conn.fetchval(
        "INSERT INTO schedule_firings (schedule_id, occurrence, due_at, run_id, skipped_reason)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
        schedule_id,
        occurrence,
        due_at,
        run_id,
        skipped_reason,
    )
    return bool(inserted)


async def known_objects(conn: Any, schedule_id: str) -> dict[str, tuple[str, str]]:
    """{path: (etag, digest)} as the schedule last saw its datastore path."""
    rows = await conn.fetch(
        "SELECT path, etag, digest FROM schedule_objects WHERE schedule_id = $1", schedule_id
    )
    return {r["path"]: (r["etag"], r["digest"]) for r in rows}


async def remember_objects(
    conn: asyncpg.Connection, schedule_id: str, seen: dict[str, tuple[str, str]]
) -> None:
    """Replace what the schedule knows of its path with ``seen`` (deleted objects drop out,
    so an object deleted and written again counts as added)."""
    await conn.execute("DELETE FROM schedule_objects WHERE schedule_id = $1", schedule_id)
    await conn.executemany(
        "INSERT INTO schedule_objects (schedule_id, path, etag, digest) VALUES ($1, $2, $3, $4)",
        [(schedule_id, p, e, d) for p, (e, d) in seen.items()],
    )
