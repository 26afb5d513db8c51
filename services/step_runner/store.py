"""The runner's SQL: claims on step attempts and the lease that keeps them.

A claim is taken before a process starts and carries a lease; the runner renews it by
heartbeat. When the scheduler fences the attempt (lease expired) or the run is canceled, the
next heartbeat finds the row no longer ``running`` and the runner kills the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from services.runtime.states import AttemptStatus, StepPhase

__all__ = ["EnvironmentRow", "claim", "environment", "finish", "heartbeat", "release"]


async def claim(
    pool: asyncpg.Pool, run_id: str, step: str, attempt: int, runner_id: str, lease: float
) -> bool:
    """Claim the attempt; False when another runner (or an earlier delivery) has it, or when
    the scheduler has moved on (a newer attempt, or the step is no longer waiting to run)."""
    got = await pool.fetchval(
        "INSERT INTO step_attempts (run_id, step, attempt, runner_id, status, lease_until)"
        " SELECT $1, $2, $3, $4, $6, now() + make_interval(secs => $5)"
        " WHERE EXISTS (SELECT 1 FROM steps WHERE run_id = $1 AND name = $2 AND attempt = $3"
        "  AND phase = ANY($7::text[]))"
        " ON CONFLICT DO NOTHING RETURNING true",
        run_id,
        step,
        attempt,
        runner_id,
        lease,
        AttemptStatus.RUNNING,
        StepPhase.claimable(),
    )
    return bool(got)


async def heartbeat(
    pool: asyncpg.Pool, run_id: str, step: str, attempt: int, lease: float, pid: int | None
) -> str:
    """Extend the lease; return the attempt's status (anything but ``running`` means stop).

    ``pid`` is None while the attempt is still being prepared (no process yet)."""
    status = await pool.fetchval(
        "UPDATE step_attempts SET lease_until = CASE WHEN status = $6"
        " THEN now() + make_interval(secs => $4) ELSE lease_until END,"
        " pid = COALESCE($5::integer, pid)"
        " WHERE run_id = $1 AND step = $2 AND attempt = $3 RETURNING status",
        run_id,
        step,
        attempt,
        lease,
        pid,
        AttemptStatus.RUNNING,
    )
    return str(status)


async def finish(
    conn: asyncpg.Connection,
    run_id: str,
    step: str,
    attempt: int,
    outcome: str,
    exit_code: int | None,
    error: str | None,
) -> bool:
    """Record the end of the attempt; False when it was fenced or canceled meanwhile."""
    done = await conn.fetchval(
        "UPDATE step_attempts SET status = $7, outcome = $4, exit_code = $5,"
        " error = $6, finished_at = now()"
        " WHERE run_id = $1 AND step = $2 AND attempt = $3 AND status = $8"
        " RETURNING true",
        run_id,
        step,
        attempt,
        outcome,
        exit_code,
        error,
        AttemptStatus.FINISHED,
        AttemptStatus.RUNNING,
    )
    return bool(done)


async def release(pool: asyncpg.Pool, run_id: str, step: str, attempt: int, why: str) -> None:
    """Hand the attempt back (runner shutting down): the scheduler re-dispatches it at once."""
    await pool.execute(
        "UPDATE step_attempts SET status = $5, error = $4, finished_at = now()"
        " WHERE run_id = $1 AND step = $2 AND attempt = $3 AND status = $6",
        run_id,
        step,
        attempt,
        why,
        AttemptStatus.RELEASED,
        AttemptStatus.RUNNING,
    )


@dataclass(frozen=True)
class EnvironmentRow:
    digest: str
    python: str
    env_vars: dict[str, str]


async def environment(pool: Any, key: str) -> EnvironmentRow | None:
    """The built environment ``key``: its digest, Python version and variables."""
    row = await pool.fetchrow(
        "SELECT digest, python, definition FROM environments WHERE name = $1"
        " AND status = 'ready' AND digest IS NOT NULL",
        key,
    )
    if row is None:
        return None
    env_vars = (row["definition"] or {}).get("env_vars", {})
    return EnvironmentRow(row["digest"], row["python"], dict(env_vars))
