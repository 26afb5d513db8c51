"""The API's SQL: reading runs, steps, logs, metrics and outputs; accepting runs; registering
datastores and datasets."""

from __future__ import annotations

from typing import Any

import asyncpg

from contracts.status import StepStatus
from services.runtime.runs import insert_queued_run
from services.runtime.storage import DatastoreRecord

__all__ = [
    "V1_ENDPOINT_SUBMIT",
    "add_endpoint_version",
    "cache_entries",
    "compute_target",
    "compute_targets",
    "create_endpoint",
    "dataset_lineage",
    "dataset_version",
    "dataset_versions",
    "earlier_fingerprints",
    "endpoint_view",
    "environment_builds",
    "environment_count",
    "environment_version",
    "evict",
    "fingerprint_of",
    "insert_compute_target",
    "insert_dataset_version",
    "insert_datastore",
    "insert_environment",
    "insert_queued_run",
    "latest_dataset_version",
    "latest_datasets",
    "latest_environments",
    "list_endpoints",
    "list_experiments",
    "list_published",
    "list_runs",
    "list_schedules",
    "lock_versions",
    "publish",
    "published",
    "run_detail",
    "run_spec",
    "save_schedule",
    "schedule_firings",
    "schedule_row",
    "schedule_view",
    "set_default_datastore",
    "set_endpoint_default",
    "set_endpoint_status",
    "set_published_status",
    "step_log",
    "step_metrics",
    "step_output",
]


async def compute_targets(conn: asyncpg.Pool | asyncpg.Connection) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in await conn.fetch(
            "SELECT name, kind, config, created_at FROM compute_targets ORDER BY name"
        )
    ]


async def compute_target(
    conn: asyncpg.Pool | asyncpg.Connection, name: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT name, kind, config, created_at FROM compute_targets WHERE name = $1", name
    )
    return dict(row) if row is not None else None


async def insert_compute_target(
    conn: asyncpg.Pool | asyncpg.Connection, name: str, kind: str, config: dict[str, Any]
) -> dict[str, Any] | None:
    """Record a compute target and return it; None when the name is taken."""
    row = await conn.fetchrow(
        "INSERT INTO compute_targets (name, kind, config) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO NOTHING RETURNING name, kind, config, created_at",
        name,
        kind,
        config,
    )
    return dict(row) if row is not None else None


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _waiting_for(step: asyncpg.Record) -> str | None:
    """What a step that has not started yet waits for, to show the person waiting."""
    if step["status"] not in (StepStatus.NOT_STARTED, StepStatus.QUEUED):
        return None
    if not step["environment_ready"]:
        return f"environment {step['environment'].split(':')[0]} (being built)"
    if not step["snapshot_ready"]:
        return "its snapshot"
    return None


async def run_detail(pool: asyncpg.Pool, run_id: str) -> dict[str, Any] | None:
    run = await pool.fetchrow(
        "SELECT run_id, experiment, status, error, created_at, started_at, finished_at, spec,"
        " properties, tags FROM runs WHERE run_id = $1",
        run_id,
    )
    if run is None:
        return None
    steps = await pool.fetch(
        "SELECT name, status, attempt, exit_code, error, started_at, finished_at, runner_id,"
        " reused_from_run, reused_from_step, snapshot_ready, environment_ready, environment"
        " FROM steps WHERE run_id = $1",
        run_id,
    )
    outputs = await pool.fetch(
        "SELECT step, name, datastore, path, files, bytes, digest FROM step_outputs"
        " WHERE run_id = $1 ORDER BY name",
        run_id,
    )
    by_step: dict[str, list[dict[str, Any]]] = {}
    for o in outputs:
        by_step.setdefault(o["step"], []).append(
            {k: o[k] for k in ("name", "datastore", "path", "files", "bytes", "digest")}
        )
    order = {s["name"]: i for i, s in enumerate(run["spec"].get("steps", []))}
    spec_steps = {s["name"] for s in run["spec"].get("steps", [])}
    step_list = [
        {
            "name": s["name"],
            "status": s["status"],
            "attempt": s["attempt"],
            "exit_code": s["exit_code"],
            "error": s["error"],
            "runner_id": s["runner_id"],
            "reused_from": (
                {"run_id": s["reused_from_run"], "step": s["reused_from_step"]}
                if s["reused_from_run"]
                else None
            ),
            "started_at": _iso(s["started_at"]),
            "finished_at": _iso(s["finished_at"]),
            "outputs": by_step.get(s["name"], []),
            "waiting_for": _waiting_for(s),
        }
        for s in sorted(steps, key=lambda s: order.get(s["name"], 0))
    ]
    if not step_list:  # accepted but not yet scheduled: show the steps as NotStarted
        step_list = [
            {
                "name": n,
                "status": "NotStarted",
                "attempt": 0,
                "exit_code": None,
                "error": None,
                "runner_id": None,
                "started_at": None,
                "finished_at": None,
                "outputs": [],
            }
            for n in sorted(spec_steps, key=lambda n: order[n])
        ]
    return {
        "run_id": run["run_id"],
        "experiment": run["experiment"],
        "status": run["status"],
        "error": run["error"],
        "created_at": _iso(run["created_at"]),
        "started_at": _iso(run["started_at"]),
        "finished_at": _iso(run["finished_at"]),
        "properties": run["properties"],
        "tags": run["tags"],
        "steps": step_list,
    }


async def list_experiments(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT experiment, count(*) AS runs, max(created_at) AS latest FROM runs"
        " GROUP BY experiment ORDER BY experiment"
    )
    return [
        {"name": r["experiment"], "runs": r["runs"], "latest_run_at": _iso(r["latest"])}
        for r in rows
    ]


async def list_runs(pool: asyncpg.Pool, experiment: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT run_id, experiment, status, tags, created_at, finished_at FROM runs"
        " WHERE ($1::text IS NULL OR experiment = $1) ORDER BY created_at DESC LIMIT $2",
        experiment,
        limit,
    )
    return [
        {**dict(r), "created_at": _iso(r["created_at"]), "finished_at": _iso(r["finished_at"])}
        for r in rows
    ]


async def step_log(
    pool: asyncpg.Pool, run_id: str, step: str, stream: str
) -> asyncpg.Record | None:
    """The latest attempt's log of ``stream``."""
    return await pool.fetchrow(
        "SELECT datastore, path FROM step_logs WHERE run_id = $1 AND step = $2 AND stream = $3"
        " ORDER BY attempt DESC LIMIT 1",
        run_id,
        step,
        stream,
    )


async def step_metrics(pool: asyncpg.Pool, run_id: str, step: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT name, value, logged_at, attempt FROM metrics WHERE run_id = $1 AND step = $2"
        " AND attempt = (SELECT max(attempt) FROM metrics WHERE run_id = $1 AND step = $2)"
        " ORDER BY seq",
        run_id,
        step,
    )
    return [
        {"name": r["name"], "value": r["value"], "logged_at": _iso(r["logged_at"])} for r in rows
    ]


async def step_output(
    pool: asyncpg.Pool, run_id: str, step: str, name: str
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT datastore, path, files, bytes, digest FROM step_outputs"
        " WHERE run_id = $1 AND step = $2 AND name = $3",
        run_id,
        step,
        name,
    )


async def fingerprint_of(pool: asyncpg.Pool, run_id: str, step: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT fingerprint, fingerprint_doc, reused_from_run, reused_from_step FROM steps"
        " WHERE run_id = $1 AND name = $2",
        run_id,
        step,
    )


async def earlier_fingerprints(
    pool: asyncpg.Pool, run_id: str, step: str, limit: int = 20
) -> list[asyncpg.Record]:
    """The latest fingerprints of steps with this name in other runs."""
    return await pool.fetch(
        "SELECT s.run_id, s.name, s.fingerprint, s.fingerprint_doc FROM steps s"
        " JOIN runs r USING (run_id) WHERE s.name = $2 AND s.run_id <> $1"
        " AND s.fingerprint_doc IS NOT NULL ORDER BY r.created_at DESC LIMIT $3",
        run_id,
        step,
        limit,
    )


async def cache_entries(pool: asyncpg.Pool, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT fingerprint, run_id, step, outputs, created_at FROM reuse_index"
        " ORDER BY created_at DESC LIMIT $1",
        limit,
    )
    return [{**dict(r), "created_at": _iso(r["created_at"])} for r in rows]


async def evict(pool: asyncpg.Pool, fingerprint: str | None, run_id: str | None) -> int:
    """Remove reuse entries by fingerprint or by source run; returns how many."""
    result = await pool.execute(
        "DELETE FROM reuse_index WHERE ($1::text IS NULL OR fingerprint = $1)"
        " AND ($2::text IS NULL OR run_id = $2)",
        fingerprint,
        run_id,
    )
    return int(result.split()[-1])


def _published(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "version": row["version"],
        "status": row["status"],
        "source_run": row["source_run"],
        "created_at": _iso(row["created_at"]),
        "parameters": row["spec"].get("parameters", []),
        "continue_on_step_failure": bool(row["spec"].get("continue_on_step_failure", False)),
    }


async def publish(
    conn: Any,
    pipeline_id: str,
    name: str,
    description: str,
    version: str,
    spec: dict[str, Any],
    source_run: str | None,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO published_pipelines (id, name, description, version, spec, source_run)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        pipeline_id,
        name,
        description,
        version,
        spec,
        source_run,
    )
    return _published(row)


async def published(pool: Any, pipeline_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(public view, spec) of a published pipeline."""
    row = await pool.fetchrow("SELECT * FROM published_pipelines WHERE id = $1", pipeline_id)
    return None if row is None else (_published(row), row["spec"])


async def list_published(pool: Any, name: str | None, active_only: bool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT * FROM published_pipelines WHERE ($1::text IS NULL OR name = $1)"
        " AND (NOT $2 OR status = 'Active') ORDER BY created_at DESC",
        name,
        active_only,
    )
    return [_published(r) for r in rows]


async def set_published_status(pool: Any, pipeline_id: str, status: str) -> bool:
    result = await pool.execute(
        "UPDATE published_pipelines SET status = $2 WHERE id = $1", pipeline_id, status
    )
    return bool(result.endswith(" 1"))


async def run_spec(pool: Any, run_id: str) -> dict[str, Any] | None:
    spec = await pool.fetchval("SELECT spec FROM runs WHERE run_id = $1", run_id)
    return None if spec is None else dict(spec)


# -- pipeline endpoints -------------------------------------------------------------------


#: where v1 runs an endpoint (under ``/api/v1``): an endpoint's ``endpoint`` URL has this
#: shape, and the routes in ``endpoints`` take each form v1 code edits it into
V1_ENDPOINT_SUBMIT = "/PipelineRuns/PipelineEndpointSubmit"


async def endpoint_view(conn: Any, ref: str) -> dict[str, Any] | None:
    """An endpoint (by id or name) with its versions, oldest first."""
    ep = await conn.fetchrow("SELECT * FROM pipeline_endpoints WHERE id = $1 OR name = $1", ref)
    if ep is None:
        return None
    versions = await conn.fetch(
        "SELECT v.version, v.pipeline_id, v.created_at, p.name, p.status"
        " FROM pipeline_endpoint_versions v JOIN published_pipelines p ON p.id = v.pipeline_id"
        " WHERE v.endpoint_id = $1 ORDER BY v.created_at, v.version::int",
        ep["id"],
    )
    return {
        "id": ep["id"],
        "name": ep["name"],
        "description": ep["description"],
        "status": ep["status"],
        "default_version": ep["default_version"],
        "created_at": _iso(ep["created_at"]),
        # v1's shape: v1 code edits this URL as text into its name- and version-based forms
        "endpoint": f"/api/v1{V1_ENDPOINT_SUBMIT}/Id/{ep['id']}",
        "versions": [
            {
                "version": v["version"],
                "pipeline_id": v["pipeline_id"],
                "pipeline_name": v["name"],
                "pipeline_status": v["status"],
                "created_at": _iso(v["created_at"]),
            }
            for v in versions
        ],
    }


async def list_endpoints(pool: Any) -> list[dict[str, Any]]:
    ids = await pool.fetch("SELECT id FROM pipeline_endpoints ORDER BY name")
    out = []
    for r in ids:
        if (view := await endpoint_view(pool, r["id"])) is not None:
            out.append(view)
    return out


async def create_endpoint(conn: Any, endpoint_id: str, name: str, description: str) -> None:
    await conn.execute(
        "INSERT INTO pipeline_endpoints (id, name, description, default_version)"
        " VALUES ($1, $2, $3, '0')",
        endpoint_id,
        name,
        description,
    )


async def add_endpoint_version(
    conn: Any, endpoint_id: str, pipeline_id: str, *, set_default: bool
) -> str:
    """Append the next version ("0", "1", ...); the endpoint row is locked while numbering."""
    await conn.execute("SELECT 1 FROM pipeline_endpoints WHERE id = $1 FOR UPDATE", endpoint_id)
    count = await conn.fetchval(
        "SELECT count(*) FROM pipeline_endpoint_versions WHERE endpoint_id = $1", endpoint_id
    )
    version = str(count)
    await conn.execute(
        "INSERT INTO pipeline_endpoint_versions (endpoint_id, version, pipeline_id)"
        " VALUES ($1, $2, $3)",
        endpoint_id,
        version,
        pipeline_id,
    )
    if set_default:
        await set_endpoint_default(conn, endpoint_id, version)
    return version


async def set_endpoint_default(conn: Any, endpoint_id: str, version: str) -> None:
    await conn.execute(
        "UPDATE pipeline_endpoints SET default_version = $2 WHERE id = $1", endpoint_id, version
    )


async def rename_endpoint(conn: Any, endpoint_id: str, name: str) -> None:
    await conn.execute("UPDATE pipeline_endpoints SET name = $2 WHERE id = $1", endpoint_id, name)


async def set_endpoint_status(conn: Any, endpoint_id: str, status: str) -> None:
    await conn.execute(
        "UPDATE pipeline_endpoints SET status = $2 WHERE id = $1", endpoint_id, status
    )


# -- datastores ---------------------------------------------------------------------------
# Records carry credentials: routes turn them into views with ``public_config`` and never
# return a record itself.


async def insert_datastore(conn: Any, record: DatastoreRecord, *, overwrite: bool) -> bool:
    """Record a datastore; False when the name is taken (and ``overwrite`` is not set).

    ``ON CONFLICT`` rather than check-then-insert, so two registrations of one name at once
    cannot both succeed. An overwrite keeps ``is_default`` as it was."""
    if overwrite:
        sql = (
            "INSERT INTO datastores (name, kind, config) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, config = EXCLUDED.config"
            " RETURNING name"
        )
    else:
        sql = (
            "INSERT INTO datastores (name, kind, config) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO NOTHING RETURNING name"
        )
    return await conn.fetchval(sql, record.name, record.kind, record.config) is not None


async def set_default_datastore(conn: asyncpg.Connection, name: str) -> bool:
    """Make ``name`` the one default datastore (call inside a transaction); False if unknown.

    The advisory lock serialises concurrent changes of the default, which would otherwise
    collide on the one-default unique index."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('headrace.datastores.default'))")
    if await conn.fetchval("SELECT 1 FROM datastores WHERE name = $1", name) is None:
        return False
    await conn.execute(
        "UPDATE datastores SET is_default = false WHERE is_default AND name <> $1", name
    )
    await conn.execute("UPDATE datastores SET is_default = true WHERE name = $1", name)
    return True


# -- datasets -----------------------------------------------------------------------------


def _dataset(row: asyncpg.Record) -> dict[str, Any]:
    identity = list(row["identity"])
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "version": row["version"],
        "kind": row["kind"],
        "description": row["description"],
        "definition": row["definition"],
        "identity": identity,
        "objects": len(identity),
        "bytes": sum(int(o["size"]) for o in identity),
        "created_at": _iso(row["created_at"]),
    }


async def lock_versions(conn: Any, namespace: str, name: str) -> None:
    """Serialise registrations of one name (``namespace``: "dataset", "environment") until
    the transaction ends, so that concurrent ones number their versions one after the other."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))", f"headrace.{namespace}", name
    )


async def dataset_version(conn: Any, name: str, version: int | None) -> dict[str, Any] | None:
    """One version of a dataset (the latest when ``version`` is None), or None."""
    row = await conn.fetchrow(
        "SELECT id, name, version, kind, description, definition, identity, created_at"
        " FROM datasets WHERE name = $1"
        " AND ($2::int IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
        name,
        version,
    )
    return None if row is None else _dataset(row)


async def latest_dataset_version(conn: Any, name: str) -> int | None:
    """The newest version number of a dataset, or None: without reading any identity."""
    number = await conn.fetchval("SELECT max(version) FROM datasets WHERE name = $1", name)
    return None if number is None else int(number)


async def dataset_versions(conn: Any, name: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, name, version, kind, description, definition, identity, created_at"
        " FROM datasets WHERE name = $1"
        " ORDER BY version",
        name,
    )
    return [_dataset(r) for r in rows]


async def latest_datasets(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (name) id, name, version, kind, description, definition,"
        " identity, created_at FROM datasets"
        " ORDER BY name, version DESC"
    )
    return [_dataset(r) for r in rows]


async def insert_dataset_version(
    conn: asyncpg.Connection,
    name: str,
    kind: str,
    description: str,
    definition: dict[str, Any],
    identity: list[dict[str, Any]],
) -> dict[str, Any]:
    """Append version N+1 of ``name`` (hold ``lock_versions(conn, "dataset", name)`` first)."""
    row = await conn.fetchrow(
        "INSERT INTO datasets (name, version, id, kind, description, definition, identity)"
        " SELECT $1, coalesce(max(version), 0) + 1, gen_random_uuid(), $2, $3, $4, $5"
        " FROM datasets WHERE name = $1"
        " RETURNING id, name, version, kind, description, definition, identity, created_at",
        name,
        kind,
        description,
        definition,
        identity,
    )
    assert row is not None
    return _dataset(row)


async def dataset_lineage(conn: Any, name: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT run_id, step, dataset_name, dataset_version, input_name, recorded_at"
        " FROM dataset_lineage WHERE dataset_name = $1 ORDER BY recorded_at, run_id, step",
        name,
    )
    return [{**dict(r), "recorded_at": _iso(r["recorded_at"])} for r in rows]


# -- registered environments --------------------------------------------------------------


def _environment(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "name": row["name"],
        "version": row["version"],
        "definition": row["definition"],
        "created_at": _iso(row["created_at"]),
    }


async def environment_version(conn: Any, name: str, version: str | None) -> dict[str, Any] | None:
    """One registered version (the latest when ``version`` is None), or None."""
    row = await conn.fetchrow(
        "SELECT * FROM registered_environments WHERE name = $1"
        " AND ($2::text IS NULL OR version = $2) ORDER BY created_at DESC, version DESC LIMIT 1",
        name,
        version,
    )
    return None if row is None else _environment(row)


async def environment_count(conn: Any, name: str) -> int:
    return int(
        await conn.fetchval("SELECT count(*) FROM registered_environments WHERE name = $1", name)
    )


async def insert_environment(conn: Any, name: str, version: str, definition: Any) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO registered_environments (name, version, definition)"
        " VALUES ($1, $2, $3) RETURNING *",
        name,
        version,
        definition,
    )
    return _environment(row)


async def latest_environments(conn: Any) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (name) * FROM registered_environments"
        " ORDER BY name, created_at DESC, version DESC"
    )
    return [_environment(r) for r in rows]


async def environment_builds(
    conn: Any, environment: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM environment_builds WHERE ($1::text IS NULL OR environment = $1)"
        " ORDER BY finished_at DESC LIMIT $2",
        environment,
        limit,
    )
    return [
        {
            **{
                k: r[k]
                for k in (
                    "environment",
                    "digest",
                    "status",
                    "instance",
                    "seconds",
                    "log_key",
                    "reason",
                )
            },
            "finished_at": _iso(r["finished_at"]),
        }
        for r in rows
    ]


# -- schedules -------------------------------------------------------------------------

_SCHEDULE_COLUMNS = (
    "id",
    "name",
    "description",
    "pipeline_id",
    "pipeline_endpoint_id",
    "experiment",
    "parameters",
    "continue_on_step_failure",
    "status",
    "recurrence",
    "datastore",
    "path_on_datastore",
    "polling_interval_minutes",
    "data_path_parameter_name",
    "next_due",
    "created_at",
)


async def schedule_row(conn: Any, schedule_id: str) -> dict[str, Any] | None:
    """The stored schedule, locked for an update."""
    row = await conn.fetchrow(
        f"SELECT {', '.join(_SCHEDULE_COLUMNS)} FROM schedules WHERE id = $1 FOR UPDATE",  # noqa: S608 - fixed column names
        schedule_id,
    )
    return dict(row) if row is not None else None


async def save_schedule(conn: Any, row: dict[str, Any], *, create: bool) -> None:
    """Insert (``create``) or overwrite the schedule ``row`` holds."""
    values = [row[c] for c in _SCHEDULE_COLUMNS]
    if create:
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        await conn.execute(
            f"INSERT INTO schedules ({', '.join(_SCHEDULE_COLUMNS)}) VALUES ({marks})",  # noqa: S608 - fixed column names
            *values,
        )
        return
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(_SCHEDULE_COLUMNS[1:], start=2))
    await conn.execute(
        f"UPDATE schedules SET {sets}, updated_at = now() WHERE id = $1",  # noqa: S608 - fixed column names
        *values,
    )


_SCHEDULE_VIEW = """
SELECT s.*,
       (SELECT max(f.fired_at) FROM schedule_firings f WHERE f.schedule_id = s.id) AS last_fired_at,
       (SELECT count(*) FROM schedule_firings f
         WHERE f.schedule_id = s.id AND f.run_id IS NOT NULL) AS runs
FROM schedules s
"""


def _schedule_view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "pipeline_id": row["pipeline_id"],
        "pipeline_endpoint_id": row["pipeline_endpoint_id"],
        "experiment_name": row["experiment"],
        "pipeline_parameters": row["parameters"],
        "continue_on_step_failure": row["continue_on_step_failure"],
        "status": row["status"],
        "recurrence": row["recurrence"],
        "datastore_name": row["datastore"],
        "path_on_datastore": row["path_on_datastore"],
        "polling_interval": row["polling_interval_minutes"],
        "data_path_parameter_name": row["data_path_parameter_name"],
        "next_due": _iso(row["next_due"]),
        "last_fired_at": _iso(row["last_fired_at"]),
        "runs": row["runs"],
        "created_at": _iso(row["created_at"]),
    }


async def schedule_view(conn: Any, schedule_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(_SCHEDULE_VIEW + " WHERE s.id = $1", schedule_id)
    return _schedule_view(row) if row is not None else None


async def list_schedules(
    pool: asyncpg.Pool,
    pipeline_id: str | None,
    pipeline_endpoint_id: str | None,
    active_only: bool,
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        _SCHEDULE_VIEW + " WHERE ($1::text IS NULL OR s.pipeline_id = $1)"
        " AND ($2::text IS NULL OR s.pipeline_endpoint_id = $2)"
        " AND (NOT $3 OR s.status = 'Active') ORDER BY s.created_at, s.id",
        pipeline_id,
        pipeline_endpoint_id,
        active_only,
    )
    return [_schedule_view(r) for r in rows]


async def schedule_firings(
    pool: asyncpg.Pool, schedule_id: str, limit: int
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT f.*, r.status AS run_status FROM schedule_firings f"
        " LEFT JOIN runs r ON r.run_id = f.run_id"
        " WHERE f.schedule_id = $1 ORDER BY f.fired_at DESC, f.occurrence DESC LIMIT $2",
        schedule_id,
        limit,
    )
    return [
        {
            "occurrence": r["occurrence"],
            "due_at": _iso(r["due_at"]),
            "fired_at": _iso(r["fired_at"]),
            "run_id": r["run_id"],
            "run_status": r["run_status"],
            "skipped_reason": r["skipped_reason"],
        }
        for r in rows
    ]


# -- pipeline drafts ---------------------------------------------------------------------

_DRAFT_COLUMNS = (
    "id",
    "name",
    "description",
    "experiment",
    "spec",
    "parameters",
    "continue_on_step_failure",
    "tags",
    "properties",
    "last_submitted_run_id",
)


async def draft_row(conn: Any, draft_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """The stored draft (``lock``: for an update in this transaction)."""
    row = await conn.fetchrow(
        f"SELECT {', '.join(_DRAFT_COLUMNS)}, created_at, updated_at FROM pipeline_drafts"  # noqa: S608 - fixed column names
        " WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        draft_id,
    )
    return dict(row) if row is not None else None


async def save_draft(conn: Any, row: dict[str, Any], *, create: bool) -> None:
    """Insert (``create``) or overwrite the draft ``row`` holds."""
    values = [row[c] for c in _DRAFT_COLUMNS]
    if create:
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        await conn.execute(
            f"INSERT INTO pipeline_drafts ({', '.join(_DRAFT_COLUMNS)}) VALUES ({marks})",  # noqa: S608 - fixed column names
            *values,
        )
        return
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(_DRAFT_COLUMNS[1:], start=2))
    await conn.execute(
        f"UPDATE pipeline_drafts SET {sets}, updated_at = now() WHERE id = $1",  # noqa: S608 - fixed column names
        *values,
    )


def draft_view(row: dict[str, Any]) -> dict[str, Any]:
    """A draft as the API shows it (v1's field names)."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "experiment_name": row["experiment"],
        "pipeline": row["spec"],
        "pipeline_parameters": row["parameters"],
        "continue_on_step_failure": row["continue_on_step_failure"],
        "tags": row["tags"],
        "properties": row["properties"],
        "last_submitted_pipeline_run_id": row["last_submitted_run_id"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


async def list_drafts(pool: asyncpg.Pool, tags: dict[str, str]) -> list[dict[str, Any]]:
    """Every draft carrying all of ``tags``, oldest first."""
    rows = await pool.fetch(
        f"SELECT {', '.join(_DRAFT_COLUMNS)}, created_at, updated_at FROM pipeline_drafts"  # noqa: S608 - fixed column names
        " WHERE tags @> $1 ORDER BY created_at, id",
        tags,
    )
    return [dict(r) for r in rows]


async def delete_draft(conn: Any, draft_id: str) -> None:
    await conn.execute("DELETE FROM pipeline_drafts WHERE id = $1", draft_id)


async def draft_submitted(conn: Any, draft_id: str, run_id: str) -> None:
    """Record the run ``submit_run`` started last."""
    await conn.execute(
        "UPDATE pipeline_drafts SET last_submitted_run_id = $2 WHERE id = $1", draft_id, run_id
    )


# -- the model registry ------------------------------------------------------------------

_MODEL_COLUMNS = (
    "name, version, manifest, path, description, tags, properties, datasets, model_framework,"
    " model_framework_version, run_id, step, created_at"
)


def _model(row: Any) -> dict[str, Any]:
    """A model version as the API shows it (v1's field names; ``id`` is ``name:version``)."""
    return {
        "id": f"{row['name']}:{row['version']}",
        **{k: v for k, v in dict(row).items() if k != "created_at"},
        "created_time": _iso(row["created_at"]),
    }


async def insert_model_version(conn: Any, body: dict[str, Any]) -> dict[str, Any]:
    """Register the next version of ``body["name"]`` (numbers never reused)."""
    version = await conn.fetchval(
        "INSERT INTO model_names (name, last_version) VALUES ($1, 1)"
        " ON CONFLICT (name) DO UPDATE SET last_version = model_names.last_version + 1"
        " RETURNING last_version",
        body["name"],
    )
    row = await conn.fetchrow(
        "INSERT INTO models (name, version, manifest, path, description, tags, properties,"  # noqa: S608 - fixed column names
        " datasets, model_framework, model_framework_version, run_id, step)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        f" RETURNING {_MODEL_COLUMNS}",
        body["name"],
        version,
        body["manifest"],
        body["path"],
        body["description"],
        body["tags"],
        body["properties"],
        body["datasets"],
        body["model_framework"],
        body["model_framework_version"],
        body["run_id"],
        body["step"],
    )
    return _model(row)


async def model_version(conn: Any, name: str, version: int | None) -> dict[str, Any] | None:
    """One version (the newest when ``version`` is None), or None."""
    row = await conn.fetchrow(
        f"SELECT {_MODEL_COLUMNS} FROM models WHERE name = $1"  # noqa: S608 - fixed column names
        " AND ($2::integer IS NULL OR version = $2) ORDER BY version DESC LIMIT 1",
        name,
        version,
    )
    return _model(row) if row is not None else None


async def list_models(
    pool: asyncpg.Pool,
    *,
    name: str | None,
    tags: dict[str, str],
    properties: dict[str, str],
    run_id: str | None,
    latest: bool,
) -> list[dict[str, Any]]:
    """Versions newest first; a tag or property given as ``*`` matches any value."""
    exact_tags = {k: v for k, v in tags.items() if v != "*"}
    exact_props = {k: v for k, v in properties.items() if v != "*"}
    rows = await pool.fetch(
        f"SELECT {_MODEL_COLUMNS} FROM ("  # noqa: S608 - fixed column names
        "  SELECT *, rank() OVER (PARTITION BY name ORDER BY version DESC) AS newest"
        "  FROM models) m"
        " WHERE ($1::text IS NULL OR name = $1) AND tags @> $2 AND properties @> $3"
        " AND tags ?& $4::text[] AND properties ?& $5::text[]"
        " AND ($6::text IS NULL OR run_id = $6) AND (NOT $7 OR newest = 1)"
        " ORDER BY created_at DESC, name, version DESC",
        name,
        exact_tags,
        exact_props,
        list(tags),
        list(properties),
        run_id,
        latest,
    )
    return [_model(r) for r in rows]


async def update_model_version(
    conn: Any,
    name: str,
    version: int,
    *,
    tags: dict[str, str],
    properties: dict[str, str],
    description: str,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "UPDATE models SET tags = $3, properties = $4, description = $5"  # noqa: S608 - fixed column names
        f" WHERE name = $1 AND version = $2 RETURNING {_MODEL_COLUMNS}",
        name,
        version,
        tags,
        properties,
        description,
    )
    return _model(row)


async def delete_model_version(pool: asyncpg.Pool, name: str, version: int) -> None:
    await pool.execute("DELETE FROM models WHERE name = $1 AND version = $2", name, version)
