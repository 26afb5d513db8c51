"""The uploader's SQL: logs and metrics of step attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

__all__ = ["record_logs", "record_metrics"]


async def record_logs(
    conn: asyncpg.Connection,
    run_id: str,
    step: str,
    attempt: int,
    datastore: str,
    logs: Sequence[tuple[str, str, int]],
) -> None:
    """``logs``: (stream, path on datastore, bytes)."""
    await conn.executemany(
        "INSERT INTO step_logs (run_id, step, attempt, stream, datastore, path, bytes)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        [(run_id, step, attempt, s, datastore, p, n) for s, p, n in logs],
    )


async def record_metrics(
    conn: asyncpg.Connection,
    run_id: str,
    step: str,
    attempt: int,
    metrics: Sequence[tuple[str, object, datetime]],
) -> None:
    await conn.executemany(
        "INSERT INTO metrics (run_id, step, attempt, seq, name, value, logged_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        [
            (run_id, step, attempt, i, name, value, at)
            for i, (name, value, at) in enumerate(metrics)
        ],
    )
