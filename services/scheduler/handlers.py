"""The scheduler's decisions, one function per event type.

The scheduler is the saga's only decision maker: it records each run's state, asks phase
services for work, and turns their results into public run and step events. Every handler
runs in one transaction that also holds the inbox entry and the emitted events, and locks the
run row first, so the events of one run are applied one at a time whatever the partitioning.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import structlog
from cachetools import LRUCache

from contracts import events as ev
from contracts.envelope import DecodedEvent
from contracts.snapshot import digest_bytes
from contracts.spec import (
    DatasetInput,
    DatastoreInput,
    InputArg,
    LiteralArg,
    OutputArg,
    ParameterArg,
    ParameterValue,
    PipelineDataInput,
    PipelineSpec,
    PipelineSpecError,
    StepSpec,
    resolve_parameters,
    validate_pipeline,
)
from contracts.status import AttemptOutcome, RunStatus, StepStatus
from services.runtime import catalog
from services.runtime.outbox import Delivery, Tx
from services.runtime.states import AttemptStatus, StepPhase
from services.scheduler import store
from services.scheduler.errors import ResultRefused
from services.scheduler.reuse import fingerprint_doc, outputs_exist
from services.scheduler.settings import SchedulerSettings
from services.scheduler.state_machine import accepted_in

__all__ = ["SchedulerHandlers", "output_path"]

_log = structlog.get_logger("headrace.scheduler")


def output_path(run_id: str, step: str, attempt: int, output: str) -> str:
    """Where an attempt's output is committed: per attempt, so a late result from a
    fenced-off attempt can never overwrite the outputs of the attempt that replaced it."""
    return f"runs/{run_id}/{step}/{attempt}/outputs/{output}"


def _command_item(arg: object, params: dict[str, ParameterValue]) -> dict[str, str]:
    """A command item as dispatched: a parameter becomes a ``value``, which the runner quotes
    (unlike literal command text, which is the user's own)."""
    if isinstance(arg, ParameterArg):
        return {"kind": "value", "value": str(params[arg.name])}
    return _argument(arg, params)


def _argument(arg: object, params: dict[str, ParameterValue]) -> dict[str, str]:
    match arg:
        case LiteralArg(value=v):
            return {"kind": "literal", "value": v}
        case ParameterArg(name=n):
            return {"kind": "literal", "value": str(params[n])}
        case InputArg(name=n):
            return {"kind": "input", "name": n}
        case OutputArg(name=n):
            return {"kind": "output", "name": n}
    raise TypeError(f"unknown argument {arg!r}")


def _environment_request(run_id: str, spec: PipelineSpec, key: str) -> ev.EnvironmentRequested:
    """Ask for environment ``key`` with its definition, which the builder needs to build it."""
    definition = next((e for e in spec.environments if e.key == key), None)
    return ev.EnvironmentRequested(run_id=run_id, environment=key, definition=definition)


class SchedulerHandlers:
    """State transitions of runs and steps."""

    def __init__(self, settings: SchedulerSettings, runs: Delivery, results: Delivery) -> None:
        self.settings = settings
        self.runs = runs
        self.results = results
        self._specs: LRUCache[str, PipelineSpec] = LRUCache(maxsize=settings.spec_cache_size)

    # -- helpers ------------------------------------------------------------------------

    def _spec(self, run: store.RunRow) -> PipelineSpec:
        spec = self._specs.get(run.run_id)
        if spec is None:
            spec = PipelineSpec.model_validate(run.spec)
            self._specs[run.run_id] = spec
        return spec

    @staticmethod
    def _step_spec(spec: PipelineSpec, name: str) -> StepSpec:
        return next(s for s in spec.steps if s.name == name)

    async def _fail_run(
        self, tx: Tx, run: store.RunRow, reason: str, failed_steps: list[str]
    ) -> None:
        if run.status not in store.ACTIVE:
            return
        await store.finish_run(tx.conn, run.run_id, RunStatus.FAILED, reason)
        await store.fail_waiting_steps(tx.conn, run.run_id)
        tx.emit(
            ev.RunFailed(
                run_id=run.run_id,
                experiment=run.experiment,
                reason=reason,
                failed_steps=failed_steps,
            )
        )
        self._specs.pop(run.run_id, None)
        _log.info("scheduler.run_failed", run_id=run.run_id, reason=reason)

    async def fail_run_by_id(self, tx: Tx, run_id: str, reason: str) -> None:
        """Fail an active run for a reason outside its steps (a command that cannot be sent)."""
        run = await store.lock_run(tx.conn, run_id)
        if run is not None:
            await self._fail_run(tx, run, reason, [])

    async def _fail_step(
        self,
        tx: Tx,
        run: store.RunRow,
        name: str,
        attempt: int,
        reason: str,
        exit_code: int | None = None,
    ) -> None:
        """Fail the step; fail the run, or with ``continue_on_step_failure`` skip only what
        depends on the step and let the other branches go on."""
        await store.update_step(
            tx.conn,
            run.run_id,
            name,
            status=StepStatus.FAILED,
            phase=StepPhase.DONE,
            error=reason,
            exit_code=exit_code,
            finished_at="now",
        )
        tx.emit(
            ev.StepFailed(
                run_id=run.run_id, step=name, attempt=attempt, reason=reason, exit_code=exit_code
            )
        )
        if run.status in store.ACTIVE and self._spec(run).continue_on_step_failure:
            await store.skip_downstream(tx.conn, run.run_id, name)
            await self._finish_if_done(tx, run)
            return
        await self._fail_run(tx, run, f"step {name!r} failed: {reason}", [name])

    async def _finish_if_done(self, tx: Tx, run: store.RunRow) -> None:
        """End the run once no step can make progress any more."""
        if run.status != RunStatus.RUNNING:
            return
        active, failed = await store.progress(tx.conn, run.run_id)
        if active:
            return
        if not failed:
            await store.finish_run(tx.conn, run.run_id, RunStatus.COMPLETED)
            tx.emit(ev.RunCompleted(run_id=run.run_id, experiment=run.experiment))
            self._specs.pop(run.run_id, None)
            _log.info("scheduler.run_completed")
        else:
            await self._fail_run(tx, run, f"steps failed: {', '.join(failed)}", failed)

    async def _wake(self, tx: Tx, run_id: str, name: str) -> None:
        """Let steps of other runs that waited for this one try reuse (or run) now."""
        fingerprint = await tx.conn.fetchval(
            "SELECT fingerprint FROM steps WHERE run_id = $1 AND name = $2", run_id, name
        )
        if fingerprint is not None:
            await self.wake_runs(tx, await store.wake_waiters(tx.conn, fingerprint))

    async def wake_runs(self, tx: Tx, run_ids: list[str]) -> None:
        for other in run_ids:
            other_run = await store.lock_run(tx.conn, other)
            if other_run is not None:
                await self._advance(tx, other_run)

    async def _retry(
        self, tx: Tx, run: store.RunRow, name: str, attempt: int, reason: str, counter: str
    ) -> None:
        """Give the step a new attempt (``counter`` says which budget it used)."""
        await store.reset_for_retry(tx.conn, run.run_id, name, counter)
        tx.emit(ev.StepRetrying(run_id=run.run_id, step=name, attempt=attempt, reason=reason))
        await self._advance(tx, run)

    async def _advance(self, tx: Tx, run: store.RunRow) -> None:
        """Release every step whose upstream completed and whose prerequisites are ready.

        A released step is first fingerprinted; a reuse hit completes it at once, which may
        release its downstream steps in the same transaction (so a fully reused pipeline
        finishes in one pass, with no dispatch at all).
        """
        if run.status != RunStatus.RUNNING:
            return
        spec = self._spec(run)
        while names := await store.releasable_steps(tx.conn, run.run_id):
            for name in names:
                sspec = self._step_spec(spec, name)
                fingerprint = await self._fingerprint(tx, run, sspec)
                reusable = sspec.allow_reuse and not run.regenerate_outputs
                if reusable and await self._reuse(tx, run, sspec, fingerprint):
                    continue
                if reusable and await store.inflight_with(tx.conn, fingerprint, run.run_id):
                    # An identical step is running in another run: wait for it and reuse.
                    await store.park_for_reuse(tx.conn, run.run_id, name)
                    continue
                step = await store.step(tx.conn, run.run_id, name)
                assert step is not None
                await store.update_step(
                    tx.conn,
                    run.run_id,
                    name,
                    attempt=step.attempt + 1,
                    status=StepStatus.QUEUED,
                    phase=StepPhase.MOUNTING
                    if sspec.inputs and sspec.runs_on_runner
                    else StepPhase.DISPATCHED,
                    queued_at="now",
                )
                await store.record_lineage(tx.conn, run.run_id, sspec)
                tx.emit(await self._step_command(tx, run, sspec, step.attempt + 1))

    async def _fingerprint(self, tx: Tx, run: store.RunRow, sspec: StepSpec) -> str:
        """What the step's result depends on, digested; stored with the step for ``explain``.

        Covers the script name and the snapshot's digest (every file of the source directory),
        the arguments with parameter values substituted, the environment's digest, the compute
        target's kind, and the content identity of every input: the digest of each upstream
        output, and the names, sizes and ETags of the objects under each datastore path.
        """
        doc = await fingerprint_doc(tx.conn, run, sspec, self._dispatch_event(run, sspec, 1))
        digest = digest_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
        await store.save_fingerprint(tx.conn, run.run_id, sspec.name, digest, doc)
        return digest

    async def _reuse(self, tx: Tx, run: store.RunRow, sspec: StepSpec, fingerprint: str) -> bool:
        """Complete the step from an earlier result with the same fingerprint, if its outputs
        still exist; an entry whose outputs are gone is dropped from the index."""
        for cand in await store.reuse_candidates(tx.conn, fingerprint):
            if cand["run_id"] == run.run_id:
                continue
            outputs = [ev.UploadedOutput.model_validate(o) for o in cand["outputs"]]
            if not await outputs_exist(tx.conn, outputs):
                await store.forget_reusable(tx.conn, cand["run_id"], cand["step"])
                continue
            await store.mark_reused(tx.conn, run.run_id, sspec.name, cand["run_id"], cand["step"])
            await store.insert_outputs(tx.conn, run.run_id, sspec.name, outputs)
            tx.emit(
                ev.StepReused(
                    run_id=run.run_id,
                    step=sspec.name,
                    source_run_id=cand["run_id"],
                    source_step=cand["step"],
                    fingerprint=fingerprint,
                    outputs=outputs,
                )
            )
            await store.release_downstream(tx.conn, run.run_id, sspec.name)
            await self._finish_if_done(tx, run)
            return True
        return False

    async def _step_command(
        self, tx: Tx, run: store.RunRow, sspec: StepSpec, attempt: int
    ) -> ev.Event:
        """The command that starts an attempt.

        A step with inputs goes to the data mounter together with its dispatch, which the
        mounter forwards to the runners once the inputs are bound; a step without inputs is
        dispatched at once. A ``DataTransferStep`` goes to the data services instead.
        """
        dispatch = self._dispatch_event(run, sspec, attempt)
        inputs = await self._resolve_inputs(tx, run, sspec)
        if sspec.step_kind == "transfer":
            return ev.DataTransferRequested(
                run_id=run.run_id,
                step=sspec.name,
                attempt=attempt,
                source=inputs[0],
                destination=dispatch.outputs[0],
            )
        if not inputs:
            return dispatch
        return ev.DataMountRequested(
            run_id=run.run_id, step=sspec.name, attempt=attempt, inputs=inputs, dispatch=dispatch
        )

    async def _resolve_inputs(
        self, tx: Tx, run: store.RunRow, sspec: StepSpec
    ) -> list[ev.ResolvedInput]:
        """Where each input's data is: its datastore path, or the upstream output's."""
        upstream = [i.name for i in sspec.inputs if isinstance(i, PipelineDataInput)]
        # Most steps on the hot path consume no PipelineData: ask the database only if needed.
        produced = await store.outputs_by_name(tx.conn, run.run_id, upstream) if upstream else {}
        inputs = []
        for inp in sspec.inputs:
            if isinstance(inp, DatastoreInput):
                inputs.append(
                    ev.ResolvedInput(
                        name=inp.name,
                        datastore=inp.datastore,
                        path=inp.path_on_datastore,
                        mode=inp.mode,
                    )
                )
            elif isinstance(inp, DatasetInput):
                mode: Literal["mount", "download"] = "mount" if inp.mode == "mount" else "download"
                inputs.extend(
                    ev.ResolvedInput(name=name, datastore=p.datastore, path=p.path, mode=mode)
                    for name, p in inp.bindings()
                )
            else:
                datastore, path = produced[inp.name]
                inputs.append(
                    ev.ResolvedInput(
                        name=inp.name,
                        datastore=datastore,
                        path=path,
                        mode=inp.mode,
                        pipeline_data=True,
                    )
                )
        return inputs

    def _dispatch_event(
        self, run: store.RunRow, sspec: StepSpec, attempt: int
    ) -> ev.StepDispatched:
        params = {
            k: v for k, v in run.parameters.items() if isinstance(v, str | int | float | bool)
        }
        return ev.StepDispatched(
            run_id=run.run_id,
            step=sspec.name,
            attempt=attempt,
            compute_target=sspec.compute_target,
            script_name=sspec.script_name,
            snapshot=sspec.snapshot,
            environment=sspec.environment,
            arguments=[_argument(a, params) for a in sspec.arguments],
            inputs=[],
            outputs=[
                ev.OutputTarget(
                    name=o.name,
                    datastore=o.datastore,
                    path=o.path_on_datastore
                    or output_path(run.run_id, sspec.name, attempt, o.name),
                )
                for o in sspec.outputs
            ],
            timeout_seconds=sspec.timeout_seconds or self.settings.step_timeout_seconds,
            datasets=[i for i in sspec.inputs if isinstance(i, DatasetInput)],
            command=[_command_item(a, params) for a in sspec.command],
            processes=sspec.process_count,
        )

    async def _check_claim(
        self,
        tx: Tx,
        event: ev.StepAttemptStarted | ev.StepAttemptFinished | ev.ArtifactsUploaded,
        runner_id: str | None,
        *,
        finished: bool,
    ) -> None:
        """Refuse a result about an attempt no runner claimed, that another runner claimed,
        or (``finished``) whose script has not ended: only the claiming runner reports it."""
        claim = await store.attempt_claim(tx.conn, event.run_id, event.step, event.attempt)
        if claim is None:
            raise ResultRefused(f"{event.type}: attempt {event.attempt} was never claimed")
        if runner_id is not None and claim.runner_id != runner_id:
            raise ResultRefused(
                f"{event.type}: attempt {event.attempt} is held by runner {claim.runner_id!r}, "
                f"not {runner_id!r}"
            )
        if finished and claim.status != AttemptStatus.FINISHED:
            raise ResultRefused(
                f"{event.type}: attempt {event.attempt} has not finished (it is {claim.status})"
            )

    async def _check_upload(self, tx: Tx, run: store.RunRow, event: ev.ArtifactsUploaded) -> None:
        """An upload result must be about a finished attempt, with the outcome its runner
        recorded, and commit exactly the outputs that were dispatched, where they were sent."""
        sspec = self._step_spec(self._spec(run), event.step)
        if sspec.runs_on_runner:
            await self._check_claim(tx, event, None, finished=True)
            claim = await store.attempt_claim(tx.conn, event.run_id, event.step, event.attempt)
            if claim is not None and claim.outcome != event.outcome:
                raise ResultRefused(
                    f"{event.type}: outcome {event.outcome!r}, but the runner recorded "
                    f"{claim.outcome!r}"
                )
        if not event.succeeded:
            return
        expected = {
            o.name: (o.datastore, o.path)
            for o in self._dispatch_event(run, sspec, event.attempt).outputs
        }
        got = {o.name: (o.datastore, o.path) for o in event.outputs}
        if got != expected:
            raise ResultRefused(
                f"{event.type}: outputs {sorted(got)} at {sorted(got.values())} are not the "
                f"dispatched ones {sorted(expected)} at {sorted(expected.values())}"
            )

    async def _current(
        self, tx: Tx, event: ev.Event, step_name: str, attempt: int
    ) -> tuple[store.RunRow, store.StepRow] | None:
        """The run and step if ``event`` is about the step's current attempt, in a phase that
        accepts it (``state_machine.ACCEPTS``)."""
        run = await store.lock_run(tx.conn, event.run_id)
        if run is None:
            _log.warning("scheduler.unknown_run")
            return None
        step = await store.step(tx.conn, run.run_id, step_name)
        if step is None or step.attempt != attempt or not accepted_in(event, step.phase):
            _log.info(
                "scheduler.stale_result",
                phase=step.phase if step else None,
                current_attempt=step.attempt if step else None,
            )
            return None
        return run, step

    # -- run requests --------------------------------------------------------------------

    async def on_run_requested(self, event: ev.RunRequested, decoded: DecodedEvent) -> None:
        async with self.runs.transaction(decoded) as tx:
            existing = await store.lock_run(tx.conn, event.run_id)
            if existing is not None and existing.status != RunStatus.QUEUED:
                _log.info("scheduler.run_already_started", status=existing.status)
                return
            # An unknown or disabled published pipeline raises a PermanentError here: the
            # request is dead-lettered with the reason and no run exists.
            pipeline, properties = await self._pipeline_of(tx.conn, event)
            spec_json = pipeline.model_dump(mode="json")
            try:
                validate_pipeline(
                    pipeline, compute_targets=await store.known_compute_targets(tx.conn)
                )
                params = resolve_parameters(pipeline, event.parameters)
            except PipelineSpecError as exc:
                await store.finish_run(
                    tx.conn,
                    event.run_id,
                    RunStatus.FAILED,
                    str(exc),
                    experiment=event.experiment,
                    spec=spec_json,
                )
                tx.emit(
                    ev.RunFailed(run_id=event.run_id, experiment=event.experiment, reason=str(exc))
                )
                return
            await store.upsert_run_running(
                tx.conn,
                run_id=event.run_id,
                experiment=event.experiment,
                spec=spec_json,
                parameters=dict(params),
                regenerate_outputs=event.regenerate_outputs,
                submitted_by=event.submitted_by,
                properties=properties,
            )
            await store.insert_steps(tx.conn, event.run_id, pipeline)
            tx.emit(
                ev.RunStarted(
                    run_id=event.run_id,
                    experiment=event.experiment,
                    steps=[s.name for s in pipeline.steps],
                )
            )
            # The row just written, not the event: a run the API recorded keeps the options
            # given at submit even when this copy of the request (a resend) lacks them.
            run = await store.lock_run(tx.conn, event.run_id)
            assert run is not None  # upserted above, in this transaction
            self._specs[run.run_id] = pipeline
            if not await self._request_prerequisites(tx, run, pipeline):
                return
            await self._advance(tx, run)
        _log.info("scheduler.run_started", steps=len(pipeline.steps))

    @staticmethod
    async def _pipeline_of(
        conn: Any, event: ev.RunRequested
    ) -> tuple[PipelineSpec, dict[str, str] | None]:
        """The spec the request means, and the run properties that say where it came from."""
        if event.pipeline is not None:
            return event.pipeline, None
        if event.published_pipeline_id is not None:
            found = await catalog.resolve_published(conn, event.published_pipeline_id)
        else:
            assert event.pipeline_endpoint is not None  # the event's validator ensures it
            found = await catalog.resolve_endpoint(
                conn, event.pipeline_endpoint, event.pipeline_version
            )
        return found.spec, found.properties

    async def _request_prerequisites(self, tx: Tx, run: store.RunRow, spec: PipelineSpec) -> bool:
        """Mark known snapshots/environments ready and request the others (once each)."""
        digests = sorted({s.snapshot for s in spec.steps if s.snapshot})  # transfers have none
        envs = sorted({s.environment for s in spec.steps})
        for table, keys, mark in (
            ("snapshots", digests, store.mark_snapshot),
            ("environments", envs, store.mark_environment),
        ):
            known = await store.ready_states(tx.conn, table, keys)
            for key in keys:
                status, reason = known.get(key, ("missing", None))
                if status == "ready":
                    await mark(tx.conn, key, run.run_id)
                elif status == "failed":
                    await self._fail_run(tx, run, f"{table[:-1]} {key} is unusable: {reason}", [])
                    return False
                elif table == "snapshots":
                    tx.emit(ev.SnapshotRequested(run_id=run.run_id, digest=key))
                else:
                    tx.emit(_environment_request(run.run_id, spec, key))
        return True

    # -- prerequisites -------------------------------------------------------------------

    async def _prerequisite_ready(self, tx: Tx, run_ids: list[str]) -> None:
        for run_id in run_ids:
            run = await store.lock_run(tx.conn, run_id)
            if run is not None:
                await self._advance(tx, run)

    async def on_snapshot_ready(self, event: ev.SnapshotReady, decoded: DecodedEvent) -> None:
        async with self.results.transaction(decoded) as tx:
            await self._prerequisite_ready(tx, await store.mark_snapshot(tx.conn, event.digest))

    async def on_environment_ready(self, event: ev.EnvironmentReady, decoded: DecodedEvent) -> None:
        async with self.results.transaction(decoded) as tx:
            await self._prerequisite_ready(
                tx, await store.mark_environment(tx.conn, event.environment)
            )

    async def on_snapshot_failed(self, event: ev.SnapshotFailed, decoded: DecodedEvent) -> None:
        async with self.results.transaction(decoded) as tx:
            run = await store.lock_run(tx.conn, event.run_id)
            if run is not None:
                await self._fail_run(
                    tx, run, f"snapshot {event.digest} rejected: {event.reason}", []
                )

    async def on_environment_failed(
        self, event: ev.EnvironmentFailed, decoded: DecodedEvent
    ) -> None:
        async with self.results.transaction(decoded) as tx:
            run = await store.lock_run(tx.conn, event.run_id)
            if run is not None and run.status in store.ACTIVE:
                reason = f"environment {event.environment!r} failed: {event.reason}"
                steps = await store.fail_steps_needing_environment(
                    tx.conn, run.run_id, event.environment, reason
                )
                await self._fail_run(tx, run, reason, steps)

    # -- step phases ---------------------------------------------------------------------

    # Phase results: which one applies in which phase is the table in state_machine.py.

    async def on_data_mounted(self, event: ev.DataMounted, decoded: DecodedEvent) -> None:
        async with self.results.transaction(decoded) as tx:
            found = await self._current(tx, event, event.step, event.attempt)
            if found is not None:
                await store.update_step(
                    tx.conn, event.run_id, event.step, phase=StepPhase.DISPATCHED
                )

    async def on_data_mount_failed(self, event: ev.DataMountFailed, decoded: DecodedEvent) -> None:
        async with self.results.transaction(decoded) as tx:
            found = await self._current(tx, event, event.step, event.attempt)
            if found is not None:
                await self._fail_step(
                    tx, found[0], event.step, event.attempt, f"input data: {event.reason}"
                )

    async def on_attempt_started(self, event: ev.StepAttemptStarted, decoded: DecodedEvent) -> None:
        async with self.results.transaction(decoded) as tx:
            found = await self._current(tx, event, event.step, event.attempt)
            if found is None:
                return
            await self._check_claim(tx, event, event.runner_id, finished=False)
            await store.update_step(
                tx.conn,
                event.run_id,
                event.step,
                status=StepStatus.RUNNING,
                phase=StepPhase.RUNNING,
                runner_id=event.runner_id,
                started_at="now",
            )
            tx.emit(
                ev.StepStarted(
                    run_id=event.run_id,
                    step=event.step,
                    attempt=event.attempt,
                    runner_id=event.runner_id,
                )
            )

    async def on_attempt_finished(
        self, event: ev.StepAttemptFinished, decoded: DecodedEvent
    ) -> None:
        async with self.results.transaction(decoded) as tx:
            found = await self._current(tx, event, event.step, event.attempt)
            if found is not None:
                await self._check_claim(tx, event, event.runner_id, finished=True)
                await store.update_step(
                    tx.conn,
                    event.run_id,
                    event.step,
                    phase=StepPhase.UPLOADING,
                    exit_code=event.exit_code,
                    runner_id=event.runner_id,
                )

    async def on_artifacts_uploaded(
        self, event: ev.ArtifactsUploaded, decoded: DecodedEvent
    ) -> None:
        async with self.results.transaction(decoded) as tx:
            found = await self._current(tx, event, event.step, event.attempt)
            if found is None:
                return
            run, step = found
            await self._check_upload(tx, run, event)
            if not event.succeeded:
                reason = event.error or f"outcome {event.outcome}"
                sspec = self._step_spec(self._spec(run), event.step)
                if run.status == RunStatus.RUNNING and step.failed_attempts < sspec.max_retries:
                    await self._retry(tx, run, event.step, event.attempt, reason, "failed_attempts")
                    return
                await self._fail_step(tx, run, event.step, event.attempt, reason, event.exit_code)
                return
            await store.insert_outputs(tx.conn, run.run_id, event.step, event.outputs)
            if self._step_spec(self._spec(run), event.step).allow_reuse:
                await store.record_reusable(
                    tx.conn,
                    run.run_id,
                    event.step,
                    [o.model_dump(mode="json") for o in event.outputs],
                )
            await store.update_step(
                tx.conn,
                run.run_id,
                event.step,
                status=StepStatus.COMPLETED,
                phase=StepPhase.DONE,
                exit_code=event.exit_code,
                finished_at="now",
            )
            tx.emit(
                ev.StepCompleted(
                    run_id=run.run_id,
                    step=event.step,
                    attempt=event.attempt,
                    outputs=list(event.outputs),
                )
            )
            await store.release_downstream(tx.conn, run.run_id, event.step)
            await self._advance(tx, run)
            await self._finish_if_done(tx, run)
            await self._wake(tx, run.run_id, event.step)

    async def on_artifact_upload_failed(
        self, event: ev.ArtifactUploadFailed, decoded: DecodedEvent
    ) -> None:
        async with self.results.transaction(decoded) as tx:
            found = await self._current(tx, event, event.step, event.attempt)
            if found is not None:
                await self._fail_step(
                    tx, found[0], event.step, event.attempt, f"artifact upload: {event.reason}"
                )

    # -- cancellation and lost runners ----------------------------------------------------

    async def on_cancel_requested(
        self, event: ev.RunCancelRequested, decoded: DecodedEvent
    ) -> None:
        """Cancel: steps end Canceled, running attempts are marked so their runners kill them
        at the next heartbeat, and nothing more is dispatched."""
        async with self.runs.transaction(decoded) as tx:
            run = await store.lock_run(tx.conn, event.run_id)
            if run is None or run.status not in store.ACTIVE:
                _log.info("scheduler.cancel_ignored", status=run.status if run else None)
                return
            canceled = await store.cancel_steps(tx.conn, run.run_id)
            await store.finish_run(tx.conn, run.run_id, RunStatus.CANCELED, event.reason or None)
            for name, attempt in canceled:
                tx.emit(ev.StepCanceled(run_id=run.run_id, step=name, attempt=max(attempt, 1)))
            tx.emit(
                ev.RunCanceled(run_id=run.run_id, experiment=run.experiment, reason=event.reason)
            )
            self._specs.pop(run.run_id, None)
            _log.info("scheduler.run_canceled", steps=len(canceled))

    async def on_lease_lost(self, tx: Tx, run_id: str, step: str, attempt: int, why: str) -> None:
        """A runner stopped renewing its lease (or handed the attempt back): fence the attempt
        and give the step a new one, within the budget for lost runners."""
        run = await store.lock_run(tx.conn, run_id)
        if run is None or not await store.fence_attempt(tx.conn, run_id, step, attempt):
            return  # acted on already
        current = await store.step(tx.conn, run_id, step)
        if current is None or current.attempt != attempt or current.phase == StepPhase.DONE:
            return
        _log.warning("scheduler.lease_lost", run_id=run_id, step=step, attempt=attempt, why=why)
        if run.status != RunStatus.RUNNING:
            return
        if current.lost_attempts + 1 > self.settings.max_lost_attempts:
            reason = f"runner lost {current.lost_attempts + 1} times ({why})"
            await self._fail_step(tx, run, step, attempt, reason)
            return
        await self._retry(tx, run, step, attempt, f"runner lost: {why}", "lost_attempts")

    # -- the watchdog's redeliveries ----------------------------------------------------------

    async def redeliver(self, tx: Tx, item: store.Stalled) -> None:
        """Send again a command that shows no progress (lost with a broker restart, say).

        Every command is safe to repeat: runners claim an attempt once, uploads rewrite the
        same objects, and results for anything but the current attempt and phase are ignored.
        """
        run = await store.lock_run(tx.conn, item.run_id)
        if run is None:
            return
        if item.kind == "run":
            if run.status == RunStatus.QUEUED:
                tx.emit(
                    ev.RunRequested(
                        run_id=run.run_id,
                        experiment=run.experiment,
                        pipeline=PipelineSpec.model_validate(run.spec),
                        parameters={
                            k: v
                            for k, v in run.parameters.items()
                            if isinstance(v, str | int | float | bool)
                        },
                        regenerate_outputs=run.regenerate_outputs,
                        submitted_by=run.submitted_by,
                    )
                )
            return
        if run.status != RunStatus.RUNNING:
            return
        if item.kind == "snapshot":
            tx.emit(ev.SnapshotRequested(run_id=run.run_id, digest=item.key))
        elif item.kind == "environment":
            tx.emit(_environment_request(run.run_id, self._spec(run), item.key))
        elif item.kind == "step":
            step = await store.step(tx.conn, run.run_id, item.key)
            if step is not None and step.attempt == item.attempt:
                sspec = self._step_spec(self._spec(run), item.key)
                tx.emit(await self._step_command(tx, run, sspec, item.attempt))
        elif item.kind == "upload":
            sspec = self._step_spec(self._spec(run), item.key)
            ok = item.outcome == AttemptOutcome.SUCCEEDED
            outputs = self._dispatch_event(run, sspec, item.attempt).outputs if ok else []
            tx.emit(
                ev.ArtifactUploadRequested(
                    run_id=run.run_id,
                    step=item.key,
                    attempt=item.attempt,
                    outputs=outputs,
                    outcome=item.outcome,
                    exit_code=item.exit_code,
                    error=item.error,
                )
            )
        _log.info("scheduler.redelivered", kind=item.kind, key=item.key, attempt=item.attempt)
