"""Recording a run as Queued before its ``RunRequested`` is published.

Shared by whoever starts runs from inside headrace (the API on submit, the schedule firer on a
due schedule): the row exists, with the properties that say where the run came from, from the
moment the request is staged, so a caller that lists runs right away sees it. The scheduler's
upsert keeps these properties when it starts the run.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from contracts.status import RunStatus

__all__ = ["insert_queued_run"]


async def insert_queued_run(
    conn: asyncpg.Connection,
    run_id: str,
    experiment: str,
    spec: dict[str, Any],
    parameters: dict[str, Any],
    regenerate_outputs: bool,
    properties: dict[str, Any],
    tags: dict[str, str] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO runs (run_id, experiment, status, spec, parameters, regenerate_outputs,"
        " properties, tags) VALUES ($1, $2, $8, $3, $4, $5, $6, $7)",
        run_id,
        experiment,
        spec,
        parameters,
        regenerate_outputs,
        properties,
        tags or {},
        RunStatus.QUEUED,
    )
