"""The data mounter's SQL: datastores (services.runtime.storage) and whether an attempt has
already been claimed by a runner (then a redelivered mount request is ignored)."""

from __future__ import annotations

from typing import Any

from services.runtime.storage import load_datastore

__all__ = ["attempt_claimed", "load_datastore"]


async def attempt_claimed(pool: Any, run_id: str, step: str, attempt: int) -> bool:
    found = await pool.fetchval(
        "SELECT true FROM step_attempts WHERE run_id = $1 AND step = $2 AND attempt = $3",
        run_id,
        step,
        attempt,
    )
    return bool(found)
