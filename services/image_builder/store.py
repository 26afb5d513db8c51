"""The image builder's SQL: resolved environments by key, and the log of real builds."""

from __future__ import annotations

from typing import Any

__all__ = ["ready_digest", "record", "record_build"]


async def record(
    conn: Any,
    name: str,
    status: str,
    digest: str | None,
    python: str | None,
    reason: str | None,
    definition: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO environments (name, status, digest, python, reason, definition)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET status = $2,"
        " digest = $3, python = $4, reason = $5, definition = $6",
        name,
        status,
        digest,
        python,
        reason,
        definition,
    )


async def ready_digest(conn: Any, name: str) -> tuple[str, str] | None:
    """(digest, python) of a ready environment."""
    row = await conn.fetchrow(
        "SELECT digest, python FROM environments WHERE name = $1 AND status = 'ready'", name
    )
    return None if row is None else (row["digest"], row["python"])


async def record_build(
    conn: Any,
    environment: str,
    digest: str | None,
    status: str,
    instance: str,
    seconds: float,
    log_key: str | None,
    reason: str | None,
) -> None:
    await conn.execute(
        "INSERT INTO environment_builds (environment, digest, status, instance, seconds,"
        " log_key, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        environment,
        digest,
        status,
        instance,
        seconds,
        log_key,
        reason,
    )
