"""The runner's SQL: claims on step attempts, taken before a process starts."""

from __future__ import annotations

import asyncpg

__all__ = ["claim", "finish"]


async def claim(pool: asyncpg.Pool, run_id: str, step: str, attempt: int, runner_id: str) -> bool:
    """Claim the attempt; False when another runner (or an earlier delivery) has it, or when
    the scheduler has moved on (a newer attempt, or the step is no longer waiting to run)."""
    got = await pool.fetchval(
        "INSERT INTO step_attempts (run_id, step, attempt, runner_id, status)"
        " SELECT $1, $2, $3, $4, 'running' WHERE EXISTS (SELECT 1 FROM steps"
        "  WHERE run_id = $1 AND name = $2 AND attempt = $3"
        "  AND phase IN ('mounting', 'dispatched'))"
        " ON CONFLICT DO NOTHING RETURNING true",
        run_id,
        step,
        attempt,
        runner_id,
    )
    return bool(got)


async def finish(
    conn: asyncpg.Connection,
    run_id: str,
    step: str,
    attempt: int,
    outcome: str,
    exit_code: int | None,
    pid: int | None,
) -> None:
    await conn.execute(
        "UPDATE step_attempts SET status = 'finished', outcome = $4, exit_code = $5, pid = $6,"
        " finished_at = now() WHERE run_id = $1 AND step = $2 AND attempt = $3",
        run_id,
        step,
        attempt,
        outcome,
        exit_code,
        pid,
    )
