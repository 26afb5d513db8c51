"""The scheduler's SQL: runs, steps and their phase states.

Every function takes the handler's connection, so the state change, the inbox entry and the
emitted events commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from contracts.events import UploadedOutput
from contracts.spec import DatasetInput, PipelineSpec, StepSpec, step_dependencies
from contracts.status import AttemptOutcome, RunStatus, StepStatus
from services.runtime.states import AttemptStatus, StepPhase

__all__ = [
    "ACTIVE",
    "AttemptClaim",
    "RunRow",
    "Stalled",
    "StepRow",
    "attempt_claim",
    "cancel_steps",
    "compute_kind",
    "environment_digest",
    "expired_leases",
    "fail_steps_needing_environment",
    "fail_waiting_steps",
    "fence_attempt",
    "finish_run",
    "forget_reusable",
    "inflight_with",
    "insert_outputs",
    "insert_steps",
    "known_compute_targets",
    "lock_run",
    "mark_environment",
    "mark_reused",
    "mark_snapshot",
    "output_digests",
    "outputs_by_name",
    "park_for_reuse",
    "progress",
    "ready_states",
    "record_lineage",
    "record_reusable",
    "releasable_steps",
    "release_downstream",
    "reset_for_retry",
    "reuse_candidates",
    "save_fingerprint",
    "skip_downstream",
    "stalled",
    "step",
    "update_step",
    "upsert_run_running",
    "wake_waiters",
]

ACTIVE = RunStatus.active()
_TERMINAL_STEPS = list(StepStatus.terminal())


@dataclass(frozen=True)
class RunRow:
    run_id: str
    experiment: str
    status: RunStatus
    spec: dict[str, object]
    parameters: dict[str, object]
    regenerate_outputs: bool = False
    submitted_by: str | None = None


@dataclass(frozen=True)
class StepRow:
    name: str
    status: StepStatus
    phase: StepPhase
    attempt: int
    error: str | None
    exit_code: int | None
    failed_attempts: int = 0
    lost_attempts: int = 0


async def lock_run(conn: asyncpg.Connection, run_id: str) -> RunRow | None:
    """Lock the run row for this transaction, serialising all events of one run."""
    row = await conn.fetchrow(
        "SELECT run_id, experiment, status, spec, parameters, regenerate_outputs, submitted_by"
        " FROM runs WHERE run_id = $1 FOR UPDATE",
        run_id,
    )
    if row is None:
        return None
    return RunRow(**{**dict(row), "status": RunStatus(row["status"])})


@dataclass(frozen=True)
class AttemptClaim:
    """What the runner that claimed an attempt recorded in ``step_attempts``."""

    runner_id: str
    status: str
    outcome: str | None


async def attempt_claim(
    conn: asyncpg.Connection, run_id: str, step: str, attempt: int
) -> AttemptClaim | None:
    row = await conn.fetchrow(
        "SELECT runner_id, status, outcome FROM step_attempts"
        " WHERE run_id = $1 AND step = $2 AND attempt = $3",
        run_id,
        step,
        attempt,
    )
    return None if row is None else AttemptClaim(**dict(row))


async def known_compute_targets(conn: asyncpg.Connection) -> list[str]:
    return [r["name"] for r in await conn.fetch("SELECT name FROM compute_targets")]


async def upsert_run_running(
    conn: asyncpg.Connection,
    *,
    run_id: str,
    experiment: str,
    spec: dict[str, object],
    parameters: dict[str, object],
    regenerate_outputs: bool,
    submitted_by: str | None,
    properties: dict[str, str] | None = None,
) -> None:
    """Record the run as Running (it may exist as Queued when the API accepted it)."""
    await conn.execute(
        "INSERT INTO runs (run_id, experiment, status, spec, parameters, regenerate_outputs,"
        " submitted_by, properties, started_at)"
        " VALUES ($1, $2, $8, $3, $4, $5, $6, $7, now())"
        " ON CONFLICT (run_id) DO UPDATE SET status = $8, started_at = now()",
        run_id,
        experiment,
        spec,
        parameters,
        regenerate_outputs,
        submitted_by,
        properties or {},
        RunStatus.RUNNING,
    )


async def finish_run(
    conn: asyncpg.Connection,
    run_id: str,
    status: str,
    error: str | None = None,
    *,
    experiment: str = "",
    spec: dict[str, object] | None = None,
) -> None:
    """Set the run's terminal status (inserting it when it failed before it was recorded)."""
    await conn.execute(
        "INSERT INTO runs (run_id, experiment, status, spec, error, finished_at)"
        " VALUES ($1, $2, $3, $4, $5, now())"
        " ON CONFLICT (run_id) DO UPDATE SET status = $3, error = $5, finished_at = now()",
        run_id,
        experiment,
        status,
        spec or {},
        error,
    )


async def insert_steps(conn: asyncpg.Connection, run_id: str, spec: PipelineSpec) -> None:
    deps = step_dependencies(spec)
    await conn.executemany(
        "INSERT INTO steps (run_id, name, upstream, pending_upstream, snapshot, environment,"
        " compute_target, snapshot_ready) VALUES ($1, $2, $3, $4, $5, $6, $7, $5 = '')"
        " ON CONFLICT DO NOTHING",
        [
            (
                run_id,
                s.name,
                sorted(deps[s.name]),
                len(deps[s.name]),
                s.snapshot,
                s.environment,
                s.compute_target,
            )
            for s in spec.steps
        ],
    )


async def ready_states(
    conn: asyncpg.Connection, table: str, keys: Sequence[str]
) -> dict[str, tuple[str, str | None]]:
    """Status and failure reason of known snapshots (``table='snapshots'``) or environments."""
    column = {"snapshots": "digest", "environments": "name"}[table]
    rows = await conn.fetch(
        f"SELECT {column} AS k, status, reason FROM {table} WHERE {column} = ANY($1::text[])",  # noqa: S608 - fixed identifiers
        list(keys),
    )
    return {r["k"]: (r["status"], r["reason"]) for r in rows}


async def mark_snapshot(
    conn: asyncpg.Connection, digest: str, run_id: str | None = None
) -> list[str]:
    """Flag steps waiting on this snapshot as having it; return the runs concerned."""
    rows = await conn.fetch(
        "UPDATE steps SET snapshot_ready = true WHERE snapshot = $1 AND NOT snapshot_ready"
        " AND ($2::text IS NULL OR run_id = $2) RETURNING run_id",
        digest,
        run_id,
    )
    return sorted({r["run_id"] for r in rows})


async def mark_environment(
    conn: asyncpg.Connection, name: str, run_id: str | None = None
) -> list[str]:
    """Flag steps waiting on this environment as having it; return the runs concerned."""
    rows = await conn.fetch(
        "UPDATE steps SET environment_ready = true WHERE environment = $1"
        " AND NOT environment_ready AND ($2::text IS NULL OR run_id = $2) RETURNING run_id",
        name,
        run_id,
    )
    return sorted({r["run_id"] for r in rows})


async def releasable_steps(conn: asyncpg.Connection, run_id: str) -> list[str]:
    """Steps whose upstream completed and whose snapshot and environment are ready."""
    rows = await conn.fetch(
        "SELECT name FROM steps WHERE run_id = $1 AND phase = $2"
        " AND pending_upstream = 0 AND snapshot_ready AND environment_ready ORDER BY name",
        run_id,
        StepPhase.WAITING,
    )
    return [r["name"] for r in rows]


async def step(conn: asyncpg.Connection, run_id: str, name: str) -> StepRow | None:
    row = await conn.fetchrow(
        "SELECT name, status, phase, attempt, error, exit_code, failed_attempts, lost_attempts"
        " FROM steps WHERE run_id = $1 AND name = $2",
        run_id,
        name,
    )
    if row is None:
        return None
    values = dict(row)
    return StepRow(
        **{**values, "status": StepStatus(values["status"]), "phase": StepPhase(values["phase"])}
    )


_STEP_COLUMNS = frozenset(
    {
        "status",
        "phase",
        "attempt",
        "runner_id",
        "exit_code",
        "error",
        "queued_at",
        "started_at",
        "finished_at",
    }
)


async def update_step(conn: asyncpg.Connection, run_id: str, name: str, **values: object) -> None:
    """Set columns of one step; ``now`` as a value means the database's current time."""
    sets: list[str] = []
    args: list[object] = [run_id, name]
    for column, value in values.items():
        if column not in _STEP_COLUMNS:
            raise ValueError(f"unknown step column {column!r}")
        if value == "now":
            sets.append(f"{column} = now()")
        else:
            args.append(value)
            sets.append(f"{column} = ${len(args)}")
    await conn.execute(
        f"UPDATE steps SET {', '.join(sets)} WHERE run_id = $1 AND name = $2",  # noqa: S608 - columns checked above
        *args,
    )


async def record_lineage(conn: asyncpg.Connection, run_id: str, sspec: StepSpec) -> None:
    """Which registered dataset versions the step consumes (once per step and input)."""
    for inp in sspec.inputs:
        if isinstance(inp, DatasetInput) and inp.dataset_name and inp.dataset_version:
            await conn.execute(
                "INSERT INTO dataset_lineage (run_id, step, dataset_name, dataset_version,"
                " input_name) SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM datasets"
                " WHERE name = $3 AND version = $4) ON CONFLICT DO NOTHING",
                run_id,
                sspec.name,
                inp.dataset_name,
                inp.dataset_version,
                inp.name,
            )


async def fail_steps_needing_environment(
    conn: asyncpg.Connection, run_id: str, environment: str, reason: str
) -> list[str]:
    """Fail the run's waiting steps that need ``environment``, with ``reason``; their names."""
    rows = await conn.fetch(
        "UPDATE steps SET status = $4, phase = $5, finished_at = now(), error = $3"
        " WHERE run_id = $1 AND environment = $2 AND phase = $6 RETURNING name",
        run_id,
        environment,
        reason,
        StepStatus.FAILED,
        StepPhase.DONE,
        StepPhase.WAITING,
    )
    return sorted(r["name"] for r in rows)


async def fail_waiting_steps(conn: asyncpg.Connection, run_id: str) -> None:
    """Steps not yet released will never run: mark them Skipped."""
    await conn.execute(
        "UPDATE steps SET status = $2, phase = $3, finished_at = now()"
        " WHERE run_id = $1 AND phase = $4",
        run_id,
        StepStatus.SKIPPED,
        StepPhase.DONE,
        StepPhase.WAITING,
    )


async def release_downstream(conn: asyncpg.Connection, run_id: str, name: str) -> None:
    await conn.execute(
        "UPDATE steps SET pending_upstream = pending_upstream - 1"
        " WHERE run_id = $1 AND $2 = ANY(upstream)",
        run_id,
        name,
    )


async def progress(conn: asyncpg.Connection, run_id: str) -> tuple[int, list[str]]:
    """(steps not yet finished, names of failed steps) of a run."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE status <> ALL($2::text[])) AS active,"
        " coalesce(array_agg(name ORDER BY name) FILTER (WHERE status = $3), '{}')"
        "  AS failed FROM steps WHERE run_id = $1",
        run_id,
        _TERMINAL_STEPS,
        StepStatus.FAILED,
    )
    assert row is not None  # an aggregate always returns a row
    return int(row["active"]), list(row["failed"])


async def insert_outputs(
    conn: asyncpg.Connection, run_id: str, step_name: str, outputs: Iterable[UploadedOutput]
) -> None:
    await conn.executemany(
        "INSERT INTO step_outputs (run_id, step, name, datastore, path, files, bytes, digest)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (run_id, step, name) DO UPDATE SET datastore = $4, path = $5,"
        " files = $6, bytes = $7, digest = $8",
        [
            (run_id, step_name, o.name, o.datastore, o.path, o.files, o.bytes, o.digest)
            for o in outputs
        ],
    )


async def outputs_by_name(
    conn: asyncpg.Connection, run_id: str, names: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Committed outputs of the run: name -> (datastore, path)."""
    rows = await conn.fetch(
        "SELECT name, datastore, path FROM step_outputs WHERE run_id = $1"
        " AND name = ANY($2::text[])",
        run_id,
        list(names),
    )
    return {r["name"]: (r["datastore"], r["path"]) for r in rows}


async def skip_downstream(conn: asyncpg.Connection, run_id: str, name: str) -> None:
    """Steps depending (transitively) on ``name`` will never run: mark them Skipped."""
    await conn.execute(
        "WITH RECURSIVE down(name) AS ("
        "  SELECT s.name FROM steps s WHERE s.run_id = $1 AND $2 = ANY(s.upstream)"
        "  UNION SELECT s.name FROM steps s JOIN down d ON d.name = ANY(s.upstream)"
        "  WHERE s.run_id = $1)"
        " UPDATE steps SET status = $3, phase = $4, finished_at = now()"
        " WHERE run_id = $1 AND name IN (SELECT name FROM down) AND phase = $5",
        run_id,
        name,
        StepStatus.SKIPPED,
        StepPhase.DONE,
        StepPhase.WAITING,
    )


async def reset_for_retry(conn: asyncpg.Connection, run_id: str, name: str, counter: str) -> None:
    """Put the step back to waiting, counting the attempt against ``counter``'s budget."""
    if counter not in ("failed_attempts", "lost_attempts"):
        raise ValueError(counter)
    await conn.execute(
        f"UPDATE steps SET phase = $3, status = $4, {counter} = {counter} + 1,"  # noqa: S608 - checked above
        " exit_code = NULL, error = NULL WHERE run_id = $1 AND name = $2",
        run_id,
        name,
        StepPhase.WAITING,
        StepStatus.QUEUED,
    )


async def cancel_steps(conn: asyncpg.Connection, run_id: str) -> list[tuple[str, int]]:
    """Cancel every unfinished step and its running attempt; return (step, attempt) pairs."""
    rows = await conn.fetch(
        "UPDATE steps SET status = $2, phase = $3, finished_at = now()"
        " WHERE run_id = $1 AND status <> ALL($4::text[]) RETURNING name, attempt",
        run_id,
        StepStatus.CANCELED,
        StepPhase.DONE,
        _TERMINAL_STEPS,
    )
    await conn.execute(
        "UPDATE step_attempts SET status = $2, finished_at = now()"
        " WHERE run_id = $1 AND status = $3",
        run_id,
        AttemptStatus.CANCELED,
        AttemptStatus.RUNNING,
    )
    return sorted((r["name"], r["attempt"]) for r in rows)


async def fence_attempt(conn: asyncpg.Connection, run_id: str, step: str, attempt: int) -> bool:
    """Fence an expired or released attempt; False when that was done already."""
    done = await conn.fetchval(
        "UPDATE step_attempts SET status = $4, finished_at = coalesce(finished_at, now())"
        " WHERE run_id = $1 AND step = $2 AND attempt = $3"
        " AND (status = $5 OR (status = $6 AND lease_until < now()))"
        " RETURNING true",
        run_id,
        step,
        attempt,
        AttemptStatus.FENCED,
        AttemptStatus.RELEASED,
        AttemptStatus.RUNNING,
    )
    return bool(done)


async def expired_leases(conn: asyncpg.Pool | asyncpg.Connection) -> list[asyncpg.Record]:
    """Current attempts whose runner stopped renewing its lease, or handed the attempt back."""
    return await conn.fetch(
        "SELECT a.run_id, a.step, a.attempt, a.status FROM step_attempts a"
        " JOIN steps s ON s.run_id = a.run_id AND s.name = a.step AND s.attempt = a.attempt"
        " WHERE ((a.status = $1 AND a.lease_until < now()) OR a.status = $2)"
        " AND s.phase = ANY($3::text[]) LIMIT 500",
        AttemptStatus.RUNNING,
        AttemptStatus.RELEASED,
        StepPhase.leased(),
    )


@dataclass(frozen=True)
class Stalled:
    """Something waiting on a command that may have been lost."""

    kind: Literal["run", "snapshot", "environment", "step", "upload"]
    run_id: str
    key: str = ""
    attempt: int = 0
    outcome: AttemptOutcome = AttemptOutcome.ERROR
    exit_code: int | None = None
    error: str | None = None


async def stalled(conn: Any, older_than: float) -> list[Stalled]:
    """Runs, prerequisites, steps and uploads showing no progress for ``older_than`` seconds.

    ``nudged_at`` is set as items are returned, so each is re-sent at most once per period.
    """
    out: list[Stalled] = []
    for r in await conn.fetch(
        "UPDATE runs SET nudged_at = now() WHERE status = $2"
        " AND coalesce(nudged_at, created_at) < now() - make_interval(secs => $1)"
        " RETURNING run_id",
        older_than,
        RunStatus.QUEUED,
    ):
        out.append(Stalled("run", r["run_id"]))
    for r in await conn.fetch(
        "SELECT DISTINCT s.run_id, s.snapshot, s.snapshot_ready, s.environment,"
        " s.environment_ready FROM steps s JOIN runs r USING (run_id)"
        " WHERE r.status = $2 AND r.started_at < now() - make_interval(secs => $1)"
        " AND (NOT s.snapshot_ready OR NOT s.environment_ready)",
        older_than,
        RunStatus.RUNNING,
    ):
        if not r["snapshot_ready"]:
            out.append(Stalled("snapshot", r["run_id"], r["snapshot"]))
        if not r["environment_ready"]:
            out.append(Stalled("environment", r["run_id"], r["environment"]))
    for r in await conn.fetch(
        "UPDATE steps s SET nudged_at = now() FROM runs r WHERE r.run_id = s.run_id"
        " AND r.status = $2 AND s.phase = ANY($3::text[])"
        " AND coalesce(s.nudged_at, s.queued_at) < now() - make_interval(secs => $1)"
        " AND NOT EXISTS (SELECT 1 FROM step_attempts a"
        "  WHERE a.run_id = s.run_id AND a.step = s.name AND a.attempt = s.attempt)"
        " RETURNING s.run_id, s.name, s.attempt",
        older_than,
        RunStatus.RUNNING,
        StepPhase.claimable(),
    ):
        out.append(Stalled("step", r["run_id"], r["name"], r["attempt"]))
    for r in await conn.fetch(
        "UPDATE step_attempts a SET nudged_at = now() FROM steps s"
        " WHERE s.run_id = a.run_id AND s.name = a.step AND s.attempt = a.attempt"
        " AND a.status = $2"
        " AND coalesce(a.nudged_at, a.finished_at) < now() - make_interval(secs => $1)"
        " AND s.phase = ANY($3::text[])"
        " RETURNING a.run_id, a.step, a.attempt, a.outcome, a.exit_code, a.error",
        older_than,
        AttemptStatus.FINISHED,
        StepPhase.in_flight(),
    ):
        out.append(
            Stalled(
                "upload",
                r["run_id"],
                r["step"],
                r["attempt"],
                AttemptOutcome(r["outcome"]),
                r["exit_code"],
                r["error"],
            )
        )
    # A snapshot or environment shared by many steps is asked for once per run.
    return list(dict.fromkeys(out))


async def environment_digest(conn: asyncpg.Connection, name: str) -> str | None:
    digest = await conn.fetchval("SELECT digest FROM environments WHERE name = $1", name)
    return None if digest is None else str(digest)


async def compute_kind(conn: asyncpg.Connection, name: str) -> str | None:
    kind = await conn.fetchval("SELECT kind FROM compute_targets WHERE name = $1", name)
    return None if kind is None else str(kind)


async def output_digests(
    conn: asyncpg.Connection, run_id: str, names: Sequence[str]
) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT name, digest FROM step_outputs WHERE run_id = $1 AND name = ANY($2::text[])",
        run_id,
        list(names),
    )
    return {r["name"]: r["digest"] for r in rows}


async def save_fingerprint(
    conn: asyncpg.Connection, run_id: str, name: str, fingerprint: str, doc: dict[str, object]
) -> None:
    await conn.execute(
        "UPDATE steps SET fingerprint = $3, fingerprint_doc = $4 WHERE run_id = $1 AND name = $2",
        run_id,
        name,
        fingerprint,
        doc,
    )


async def reuse_candidates(conn: asyncpg.Connection, fingerprint: str) -> list[asyncpg.Record]:
    """Earlier results with this fingerprint, newest first."""
    return await conn.fetch(
        "SELECT run_id, step, outputs FROM reuse_index WHERE fingerprint = $1"
        " ORDER BY created_at DESC LIMIT 5",
        fingerprint,
    )


async def record_reusable(
    conn: asyncpg.Connection, run_id: str, name: str, outputs: list[dict[str, object]]
) -> None:
    """Index a completed step's outputs under its fingerprint (if it has one)."""
    await conn.execute(
        "INSERT INTO reuse_index (fingerprint, run_id, step, outputs)"
        " SELECT fingerprint, run_id, name, $3 FROM steps"
        " WHERE run_id = $1 AND name = $2 AND fingerprint IS NOT NULL"
        " ON CONFLICT DO NOTHING",
        run_id,
        name,
        outputs,
    )


async def forget_reusable(conn: asyncpg.Connection, run_id: str, name: str) -> None:
    """Drop an index entry whose outputs are gone."""
    await conn.execute("DELETE FROM reuse_index WHERE run_id = $1 AND step = $2", run_id, name)


async def mark_reused(
    conn: asyncpg.Connection, run_id: str, name: str, source_run: str, source_step: str
) -> None:
    await conn.execute(
        "UPDATE steps SET status = $5, phase = $6, queued_at = now(),"
        " started_at = now(), finished_at = now(), reused_from_run = $3, reused_from_step = $4"
        " WHERE run_id = $1 AND name = $2",
        run_id,
        name,
        source_run,
        source_step,
        StepStatus.COMPLETED,
        StepPhase.DONE,
    )


async def inflight_with(conn: asyncpg.Connection, fingerprint: str, run_id: str) -> bool:
    """Whether another run is executing a step with this fingerprint right now."""
    found = await conn.fetchval(
        "SELECT true FROM steps s JOIN runs r USING (run_id) WHERE s.fingerprint = $1"
        " AND s.run_id <> $2 AND r.status = $3 AND s.phase = ANY($4::text[]) LIMIT 1",
        fingerprint,
        run_id,
        RunStatus.RUNNING,
        StepPhase.in_flight(),
    )
    return bool(found)


async def park_for_reuse(conn: asyncpg.Connection, run_id: str, name: str) -> None:
    """Wait for the identical step in flight, then try reuse again."""
    await conn.execute(
        "UPDATE steps SET phase = $3, status = $4, queued_at = now()"
        " WHERE run_id = $1 AND name = $2",
        run_id,
        name,
        StepPhase.WAITING_REUSE,
        StepStatus.QUEUED,
    )


async def wake_waiters(conn: Any, fingerprint: str | None = None) -> list[str]:
    """Steps parked for reuse whose holder finished (or, with no fingerprint given, whose
    holder is gone): put them back to waiting; return their runs."""
    rows = await conn.fetch(
        "UPDATE steps w SET phase = $2 WHERE w.phase = $3"
        " AND ($1::text IS NULL OR w.fingerprint = $1) AND NOT EXISTS ("
        "  SELECT 1 FROM steps s JOIN runs r USING (run_id) WHERE s.fingerprint = w.fingerprint"
        "  AND s.run_id <> w.run_id AND r.status = $4 AND s.phase = ANY($5::text[]))"
        " RETURNING w.run_id",
        fingerprint,
        StepPhase.WAITING,
        StepPhase.WAITING_REUSE,
        RunStatus.RUNNING,
        StepPhase.in_flight(),
    )
    return sorted({r["run_id"] for r in rows})
