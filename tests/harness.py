"""A fast seam for the scheduler: its real handlers on the real (per-test) database, no broker.

The scheduler's decisions are SQL plus Python, and the events it emits go through the outbox.
Here the outbox's sender records what would be sent instead of producing to Kafka, and events
are handed to the handlers through the service's own routing tables, so a decision (a late
result from a fenced attempt, a retry budget, ``continue_on_step_failure``) is a short test
that runs in milliseconds. The models are FastStream's test broker and procrastinate's
in-memory connector, except that the database stays real: it is where the decisions are made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg

from contracts import events as ev
from contracts.envelope import DecodedEvent, Message, decode, encode
from contracts.spec import PipelineSpec, StepSpec
from contracts.status import AttemptOutcome
from contracts.topics import Topics
from services.runtime.bus import Handler
from services.runtime.outbox import Delivery, Outbox
from services.scheduler.handlers import SchedulerHandlers
from services.scheduler.service import (
    RESULTS_GROUP,
    RUNS_GROUP,
    WATCHDOG_GROUP,
    result_routes,
    run_routes,
)
from services.scheduler.settings import SchedulerSettings
from services.scheduler.watchdog import Watchdog
from services.step_runner import store as runner_store

__all__ = ["RecordingSender", "SchedulerHarness", "pipeline", "step"]

E = TypeVar("E", bound=ev.Event)

SNAPSHOT = "sha256:" + "a" * 64


class RecordingSender:
    """An ``EventSender`` that keeps what it is given; ``fail`` makes every send raise."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.fail: Exception | None = None

    async def send_many(self, items: Sequence[tuple[str, Message]]) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.extend(items)


def step(name: str, **fields: Any) -> StepSpec:
    """A python step with a snapshot and the default environment; ``fields`` override."""
    values: dict[str, Any] = {"name": name, "script_name": f"{name}.py", "snapshot": SNAPSHOT}
    values.update(fields)
    return StepSpec.model_validate(values)


def pipeline(*steps: StepSpec, **fields: Any) -> PipelineSpec:
    """A pipeline of ``steps``; ``fields`` set pipeline options (``continue_on_step_failure``)."""
    return PipelineSpec.model_validate({"steps": [s.model_dump() for s in steps], **fields})


@dataclass
class SchedulerHarness:
    """The scheduler's handlers and watchdog bound to one test database."""

    pool: asyncpg.Pool
    sender: RecordingSender
    handlers: SchedulerHandlers
    watchdog: Watchdog
    routes: dict[type[ev.Event], Handler] = field(default_factory=dict)
    _seen: int = 0

    @classmethod
    def create(
        cls, pool: asyncpg.Pool, settings: SchedulerSettings, topics: Topics
    ) -> SchedulerHarness:
        sender = RecordingSender()
        outbox = Outbox(pool, sender, topics, source="/scheduler")
        h = SchedulerHandlers(
            settings, Delivery(pool, outbox, RUNS_GROUP), Delivery(pool, outbox, RESULTS_GROUP)
        )
        watchdog = Watchdog(settings, h, Delivery(pool, outbox, WATCHDOG_GROUP))
        return cls(pool, sender, h, watchdog, {**run_routes(h), **result_routes(h)})

    async def deliver(self, event: ev.Event, *, event_id: str | None = None) -> DecodedEvent:
        """Encode ``event`` as the broker would carry it and hand it to its handler."""
        msg = encode(event, source="/test", event_id=event_id)
        decoded = decode(msg.key, msg.value, msg.headers)
        await self.routes[type(decoded.event)](decoded.event, decoded)
        return decoded

    def emitted(self, kind: type[E] | None = None) -> list[Any]:
        """Every event sent so far (of type ``kind`` if given), decoded, oldest first."""
        events = [decode(m.key, m.value, m.headers).event for _, m in self.sender.sent]
        return [e for e in events if kind is None or isinstance(e, kind)]

    def new(self, kind: type[E] | None = None) -> list[Any]:
        """Events sent since the last call of ``new`` (of type ``kind`` if given)."""
        fresh = self.sender.sent[self._seen :]
        self._seen = len(self.sender.sent)
        events = [decode(m.key, m.value, m.headers).event for _, m in fresh]
        return [e for e in events if kind is None or isinstance(e, kind)]

    async def start_run(
        self, spec: PipelineSpec, run_id: str = "run-1", **request: Any
    ) -> list[ev.Event]:
        """Request a run and make its snapshot and environment ready; return what it emitted."""
        await self.deliver(
            ev.RunRequested(run_id=run_id, experiment="exp", pipeline=spec, **request)
        )
        for digest in sorted({s.snapshot for s in spec.steps if s.snapshot}):
            await self.deliver(ev.SnapshotReady(run_id=run_id, digest=digest, files=1, bytes=1))
        for env in sorted({s.environment for s in spec.steps}):
            await self.deliver(
                ev.EnvironmentReady(
                    run_id=run_id, environment=env, digest="sha256:" + "e" * 64, python="3.11"
                )
            )
        events: list[ev.Event] = self.new()
        return events

    async def record_prerequisites(self, spec: PipelineSpec) -> None:
        """Record ``spec``'s snapshots and environments as ready, as snapshotter and image
        builder do, so that a later run finds them ready at once."""
        await self.pool.executemany(
            "INSERT INTO snapshots (digest, status) VALUES ($1, 'ready') ON CONFLICT DO NOTHING",
            [(d,) for d in {s.snapshot for s in spec.steps if s.snapshot}],
        )
        await self.pool.executemany(
            "INSERT INTO environments (name, status, digest) VALUES ($1, 'ready', $2)"
            " ON CONFLICT DO NOTHING",
            [(e, "sha256:" + "e" * 64) for e in {s.environment for s in spec.steps}],
        )

    async def claim(self, run_id: str, step: str, attempt: int, *, lease_s: float = 60) -> None:
        """Claim an attempt with the runner's own SQL (its lease already expired if
        ``lease_s`` < 0)."""
        claimed = await runner_store.claim(self.pool, run_id, step, attempt, "runner-t", lease_s)
        assert claimed, f"{run_id}/{step}#{attempt} could not be claimed"

    async def finish(self, run_id: str, step: str, attempt: int, *, ok: bool = True) -> None:
        """Record the end of the script as the runner does, before the upload is requested."""
        async with self.pool.acquire() as conn:
            outcome = AttemptOutcome.SUCCEEDED if ok else AttemptOutcome.FAILED
            await runner_store.finish(
                conn,  # type: ignore[arg-type]  # a pool's connection proxy
                run_id,
                step,
                attempt,
                outcome,
                0 if ok else 1,
                None,
            )

    async def run_step(self, run_id: str, step: str, attempt: int, *, ok: bool = True) -> None:
        """A runner's and an uploader's results for one attempt, in the usual order."""
        await self.claim(run_id, step, attempt)
        await self.deliver(
            ev.StepAttemptStarted(
                run_id=run_id, step=step, attempt=attempt, runner_id="runner-t", pid=1
            )
        )
        await self.finish(run_id, step, attempt, ok=ok)
        await self.deliver(self.uploaded(run_id, step, attempt, ok=ok))

    def uploaded(
        self, run_id: str, step: str, attempt: int, *, ok: bool = True
    ) -> ev.ArtifactsUploaded:
        """The uploader's result for an attempt that succeeded (committing the outputs its
        dispatch named) or failed with exit code 1."""
        outputs = []
        if ok:
            for e in self.emitted():
                dispatch = e.dispatch if isinstance(e, ev.DataMountRequested) else e
                if isinstance(dispatch, ev.StepDispatched) and (
                    dispatch.run_id,
                    dispatch.step,
                    dispatch.attempt,
                ) == (run_id, step, attempt):
                    outputs = [
                        ev.UploadedOutput(
                            name=o.name,
                            datastore=o.datastore,
                            path=o.path,
                            files=0,
                            bytes=0,
                            digest="sha256:" + "0" * 64,
                        )
                        for o in dispatch.outputs
                    ]
        return ev.ArtifactsUploaded(
            run_id=run_id,
            step=step,
            attempt=attempt,
            outputs=outputs,
            metrics=0,
            outcome=AttemptOutcome.SUCCEEDED if ok else AttemptOutcome.FAILED,
            exit_code=0 if ok else 1,
            error=None if ok else "exit code 1",
        )

    async def run_status(self, run_id: str = "run-1") -> str:
        return str(await self.pool.fetchval("SELECT status FROM runs WHERE run_id = $1", run_id))

    async def steps(self, run_id: str = "run-1") -> dict[str, tuple[str, int]]:
        """Each step's (status, attempt)."""
        rows = await self.pool.fetch(
            "SELECT name, status, attempt FROM steps WHERE run_id = $1", run_id
        )
        return {r["name"]: (r["status"], r["attempt"]) for r in rows}
