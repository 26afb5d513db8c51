"""What the schedule firer does with a due schedule: one function per kind of trigger.

The firer consumes no events: the clock is its input. Every look (``tick``) takes the active
schedules whose ``next_due`` has come and, for each, in one transaction: locks the row (``FOR
UPDATE SKIP LOCKED``, re-checking it is still due), moves ``next_due`` on, records the
occurrence in ``schedule_firings`` (primary key: schedule and occurrence) and stages the run's
``RunRequested`` and the public ``ScheduleFired``. Two firers never fire one occurrence twice
(the lock and the re-check), a firer killed mid-way fires nothing half (the transaction), and
after downtime a recurrence fires its missed occurrence once: ``next_due`` moves to the first
due time after *now*, not after the missed one.

A schedule whose pipeline was disabled or deleted, or whose parameters no longer fit it, still
moves on; the occurrence is recorded as skipped with the reason, and no run starts.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from pydantic import ValidationError

from contracts import events as ev
from contracts.schedule import Recurrence
from contracts.spec import PipelineSpecError, resolve_parameters
from services.runtime import catalog
from services.runtime.errors import EventTooLarge
from services.runtime.outbox import Delivery, Tx
from services.runtime.runs import insert_queued_run
from services.runtime.storage import open_named
from services.schedule_firer import store
from services.schedule_firer.settings import ScheduleFirerSettings

__all__ = ["Clock", "ScheduleFirerHandlers", "utc_now"]

_log = structlog.get_logger("headrace.schedule_firer")

#: what time it is; tests pass a controllable one
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ScheduleFirerHandlers:
    def __init__(
        self, settings: ScheduleFirerSettings, delivery: Delivery, clock: Clock = utc_now
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.clock = clock

    async def tick(self, now: datetime | None = None) -> int:
        """One look for due schedules; returns how many runs it started."""
        now = now or self.clock()
        started = 0
        for schedule_id in await store.due_ids(self.delivery.pool, now, self.settings.batch):
            structlog.contextvars.bind_contextvars(schedule_id=schedule_id)
            try:
                started += await self.act(schedule_id, now)
            except Exception as exc:  # one broken schedule (or datastore) must not stop others
                _log.warning("schedule_firer.act_failed", error=str(exc))
            finally:
                structlog.contextvars.unbind_contextvars("schedule_id")
        return started

    async def act(self, schedule_id: str, now: datetime) -> int:
        timed = await self.delivery.pool.fetchval(
            "SELECT recurrence IS NOT NULL FROM schedules WHERE id = $1", schedule_id
        )
        if timed:
            return await self.fire_recurrence(schedule_id, now)
        return await self.poll_datastore(schedule_id, now)

    # -- recurrences ---------------------------------------------------------------------

    async def fire_recurrence(self, schedule_id: str, now: datetime) -> int:
        """Fire the due occurrence of a recurring schedule (once, whatever was missed)."""
        try:
            async with self.delivery.transaction(None) as tx:
                return await self._fire_due(tx, schedule_id, now)
        except EventTooLarge as exc:
            # The run request could never be sent: record why and move on, or the schedule
            # would stay due and be retried on every look.
            async with self.delivery.transaction(None) as tx:
                return await self._fire_due(tx, schedule_id, now, skip=str(exc))

    async def _fire_due(
        self, tx: Tx, schedule_id: str, now: datetime, skip: str | None = None
    ) -> int:
        row = await store.claim(tx.conn, schedule_id, now)
        if row is None:
            return 0
        due: datetime = row["next_due"]
        try:
            recurrence = Recurrence.model_validate(row["recurrence"])
        except ValidationError as exc:
            await store.set_next_due(tx.conn, schedule_id, None, disable=True)
            _log.error("schedule_firer.recurrence_unusable", error=str(exc))
            return 0
        following = recurrence.next_after(now, row["created_at"])
        await store.set_next_due(tx.conn, schedule_id, following, disable=following is None)
        missed = 0 if following is None else _missed(recurrence, row["created_at"], due, now)
        _log.info("schedule_firer.due", due_at=due.isoformat(), missed=missed)
        return await self._start(
            tx,
            row,
            occurrence=due.isoformat(),
            due_at=due,
            trigger="recurrence",
            parameters=dict(row["parameters"]),
            changed=[],
            skip=skip,
        )

    # -- datastore triggers --------------------------------------------------------------

    async def poll_datastore(self, schedule_id: str, now: datetime) -> int:
        """List the schedule's datastore path; start a run for what was added or changed.

        Listing and hashing happen outside the transaction (they may take long); the
        transaction then re-checks that no other firer polled meanwhile (``next_due`` is
        unchanged) before it records what it saw.
        """
        pool = self.delivery.pool
        row = await pool.fetchrow("SELECT * FROM schedules WHERE id = $1", schedule_id)
        if row is None or row["status"] != "Active":
            return 0
        ds = await open_named(pool, row["datastore"])
        known = await store.known_objects(pool, schedule_id)
        seen: dict[str, tuple[str, str]] = {}
        for path, _size, etag in await ds.list_meta(row["path_on_datastore"] or ""):
            before = known.get(path)
            if before is not None and before[0] == etag:
                seen[path] = before
            else:
                seen[path] = (etag, (await ds.content_digest(path))[0])
        changed = sorted(p for p, (_, d) in seen.items() if p not in known or known[p][1] != d)
        started = 0
        async with self.delivery.transaction(None) as tx:
            locked = await store.claim(tx.conn, schedule_id, now)
            if locked is None or locked["next_due"] != row["next_due"]:
                return 0
            following = now + timedelta(minutes=locked["polling_interval_minutes"])
            await store.set_next_due(tx.conn, schedule_id, following, polled_at=now)
            await store.remember_objects(tx.conn, schedule_id, seen)
            if locked["polled_at"] is None or not changed:
                # The first listing is the baseline: what was there before the schedule
                # existed starts nothing, as in Azure ML.
                return 0
            name = locked["data_path_parameter_name"]
            batches = [[p] for p in changed] if name else [changed]
            for paths in batches:
                parameters = dict(locked["parameters"])
                if name:
                    parameters[name] = paths[0]
                started += await self._start(
                    tx,
                    locked,
                    occurrence=_change_id(now, paths, seen),
                    due_at=now,
                    trigger="datastore",
                    parameters=parameters,
                    changed=paths,
                )
        return started

    # -- starting the run ----------------------------------------------------------------

    async def _start(
        self,
        tx: Tx,
        row: Any,
        *,
        occurrence: str,
        due_at: datetime,
        trigger: Literal["recurrence", "datastore"],
        parameters: dict[str, Any],
        changed: list[str],
        skip: str | None = None,
    ) -> int:
        """Record the occurrence and stage its run; 0 when skipped or already recorded."""
        schedule_id = row["id"]
        reason = skip
        if reason is None:
            try:
                found = await (
                    catalog.resolve_published(tx.conn, row["pipeline_id"])
                    if row["pipeline_id"] is not None
                    else catalog.resolve_endpoint(tx.conn, row["pipeline_endpoint_id"], None)
                )
                spec = found.spec
                if row["continue_on_step_failure"] is not None:
                    spec = spec.model_copy(
                        update={"continue_on_step_failure": row["continue_on_step_failure"]}
                    )
                resolved = dict(resolve_parameters(spec, parameters))
            except (catalog.PublishedNotFound, catalog.PublishedDisabled) as exc:
                reason = str(exc)
            except PipelineSpecError as exc:
                reason = f"the schedule's pipeline parameters no longer fit the pipeline: {exc}"
        if reason is not None:
            await store.record_firing(
                tx.conn, schedule_id, occurrence, due_at, skipped_reason=reason
            )
            _log.warning("schedule_firer.skipped", occurrence=occurrence, reason=reason)
            return 0
        run_id = str(uuid.uuid4())
        if not await store.record_firing(tx.conn, schedule_id, occurrence, due_at, run_id=run_id):
            return 0
        await insert_queued_run(
            tx.conn,
            run_id,
            row["experiment"],
            spec.model_dump(mode="json"),
            resolved,
            False,
            {**found.properties, "schedule_id": schedule_id},
        )
        tx.emit(
            ev.RunRequested(
                run_id=run_id, experiment=row["experiment"], pipeline=spec, parameters=parameters
            ),
            ev.ScheduleFired(
                run_id=run_id,
                schedule_id=schedule_id,
                schedule_name=row["name"],
                experiment=row["experiment"],
                trigger=trigger,
                due_at=due_at,
                changed_paths=changed,
            ),
        )
        _log.info("schedule_firer.fired", occurrence=occurrence, run_id=run_id)
        return 1


def _missed(recurrence: Recurrence, created_at: datetime, due: datetime, now: datetime) -> int:
    """How many due times after ``due`` passed unfired (downtime); logged, never fired."""
    count, at = 0, recurrence.next_after(due, created_at)
    while count < 1000 and at is not None and at <= now:
        count += 1
        at = recurrence.next_after(at, created_at)
    return count


def _change_id(polled_at: datetime, paths: list[str], seen: dict[str, tuple[str, str]]) -> str:
    """The occurrence of a datastore change: the poll that saw it, which objects, with which
    content (the poll keeps a change back to earlier bytes a new occurrence)."""
    if len(paths) == 1:
        what = f"{paths[0]}@{seen[paths[0]][1]}"
    else:
        joined = "\n".join(f"{p}@{seen[p][1]}" for p in paths)
        what = f"{len(paths)} objects@sha256:{hashlib.sha256(joined.encode()).hexdigest()}"
    return f"{polled_at.isoformat()} {what}"
