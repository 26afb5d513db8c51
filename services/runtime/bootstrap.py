"""First-start registration of the workspace's built-in objects.

The embedded stack (and any deployment) needs a default datastore for snapshots, outputs and
logs, and the ``local`` compute target its runners serve. Idempotent: safe at every start.
"""

from __future__ import annotations

import json

import asyncpg

from contracts.spec import DEFAULT_COMPUTE_TARGET, DEFAULT_DATASTORE
from services.runtime.settings import RuntimeSettings

__all__ = ["bootstrap_workspace"]


async def bootstrap_workspace(settings: RuntimeSettings) -> None:
    """Register the default local datastore and the ``local`` compute target if missing."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        root = settings.home / "datastores" / DEFAULT_DATASTORE
        root.mkdir(parents=True, exist_ok=True)
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO datastores (name, kind, config, is_default)"
                " VALUES ($1, 'local', $2::jsonb, true) ON CONFLICT (name) DO NOTHING",
                DEFAULT_DATASTORE,
                json.dumps({"root": str(root)}),
            )
            await conn.execute(
                "INSERT INTO compute_targets (name, kind) VALUES ($1, 'local')"
                " ON CONFLICT (name) DO NOTHING",
                DEFAULT_COMPUTE_TARGET,
            )
    finally:
        await conn.close()
