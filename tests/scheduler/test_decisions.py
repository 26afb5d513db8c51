"""The scheduler's decisions, each driven through its real handlers and database, no broker."""

from __future__ import annotations

import pytest

from contracts import events as ev
from contracts.limits import MAX_EVENT_BYTES
from contracts.spec import LiteralArg, OutputArg, PipelineDataInput, PipelineSpec, StepOutput
from services.runtime.errors import AlreadyProcessed
from services.runtime.runs import insert_queued_run
from services.scheduler.errors import ResultRefused
from tests.harness import SchedulerHarness, pipeline, step


def _dispatched(events: list[ev.Event]) -> list[tuple[str, int]]:
    """(step, attempt) of every dispatch (direct or through the data mounter) in ``events``."""
    out = []
    for e in events:
        if isinstance(e, ev.StepDispatched | ev.DataMountRequested):
            out.append((e.step, e.attempt))
    return out


async def test_steps_wait_for_snapshot_and_environment(harness: SchedulerHarness) -> None:
    """A run asks for its snapshot and environment and dispatches only once both are ready."""
    spec = pipeline(step("a"))
    await harness.deliver(ev.RunRequested(run_id="run-1", experiment="exp", pipeline=spec))
    assert [type(e) for e in harness.new()] == [
        ev.RunStarted,
        ev.SnapshotRequested,
        ev.EnvironmentRequested,
    ]
    emitted = await harness.start_run(spec)
    assert _dispatched(emitted) == [("a", 1)]


async def test_redelivered_event_has_no_second_effect(harness: SchedulerHarness) -> None:
    """The same event id handled twice is refused by the inbox; nothing is emitted again."""
    await harness.start_run(pipeline(step("a")))
    await harness.claim("run-1", "a", 1)
    started = ev.StepAttemptStarted(
        run_id="run-1", step="a", attempt=1, runner_id="runner-t", pid=1
    )
    await harness.deliver(started, event_id="same-id")
    assert len(harness.new(ev.StepStarted)) == 1
    with pytest.raises(AlreadyProcessed):
        await harness.deliver(started, event_id="same-id")
    assert harness.new() == []


async def test_results_out_of_order_never_move_a_step_back(harness: SchedulerHarness) -> None:
    """An upload result before the runner's start event completes the step; the late start
    event is then ignored instead of putting the step back to Running."""
    await harness.start_run(pipeline(step("a")))
    await harness.claim("run-1", "a", 1)
    await harness.finish("run-1", "a", 1)
    await harness.deliver(harness.uploaded("run-1", "a", 1))
    assert (await harness.steps())["a"] == ("Completed", 1)
    await harness.deliver(
        ev.StepAttemptStarted(run_id="run-1", step="a", attempt=1, runner_id="runner-t", pid=1)
    )
    assert (await harness.steps())["a"] == ("Completed", 1)
    assert harness.emitted(ev.StepStarted) == []
    assert await harness.run_status() == "Completed"


async def test_late_result_from_fenced_attempt_is_refused(harness: SchedulerHarness) -> None:
    """A runner whose lease lapsed is fenced and the step gets attempt 2; the lost runner's
    late success for attempt 1 then completes nothing, and attempt 2's result does."""
    await harness.start_run(pipeline(step("a")))
    await harness.claim("run-1", "a", 1, lease_s=-1)
    await harness.watchdog.sweep()
    retried = harness.new()
    assert [type(e) for e in retried if isinstance(e, ev.StepRetrying)] == [ev.StepRetrying]
    assert _dispatched(retried) == [("a", 2)]
    await harness.deliver(harness.uploaded("run-1", "a", 1))
    assert harness.new(ev.StepCompleted) == []
    assert (await harness.steps())["a"] == ("Queued", 2)
    await harness.run_step("run-1", "a", 2)
    assert [e.attempt for e in harness.new(ev.StepCompleted)] == [2]
    assert await harness.run_status() == "Completed"


async def test_retry_budget_then_failure(harness: SchedulerHarness) -> None:
    """``max_retries=1``: the first failure gives a second attempt, the second fails the step
    and the run, and skips what depends on it."""
    spec = pipeline(
        step("a", max_retries=1, outputs=[StepOutput(name="d")], arguments=[OutputArg(name="d")]),
        step("b", inputs=[PipelineDataInput(name="d")]),
    )
    await harness.start_run(spec)
    await harness.run_step("run-1", "a", 1, ok=False)
    assert _dispatched(harness.new()) == [("a", 2)]
    await harness.run_step("run-1", "a", 2, ok=False)
    emitted = harness.new()
    assert [(type(e), e.attempt) for e in emitted if isinstance(e, ev.StepFailed)] == [
        (ev.StepFailed, 2)
    ]
    failed = [e for e in emitted if isinstance(e, ev.RunFailed)]
    assert [f.failed_steps for f in failed] == [["a"]]
    assert await harness.steps() == {"a": ("Failed", 2), "b": ("Skipped", 0)}


async def test_continue_on_step_failure_lets_other_branches_finish(
    harness: SchedulerHarness,
) -> None:
    """With ``continue_on_step_failure`` a failed step skips only its downstream; the
    independent branch runs to the end and only then does the run fail."""
    spec = pipeline(
        step("a", outputs=[StepOutput(name="d")], arguments=[OutputArg(name="d")]),
        step("b"),
        step("c", inputs=[PipelineDataInput(name="d")]),
        continue_on_step_failure=True,
    )
    emitted = await harness.start_run(spec)
    assert sorted(_dispatched(emitted)) == [("a", 1), ("b", 1)]
    await harness.run_step("run-1", "a", 1, ok=False)
    assert (await harness.steps())["c"] == ("Skipped", 0)
    assert await harness.run_status() == "Running"
    await harness.run_step("run-1", "b", 1)
    assert await harness.run_status() == "Failed"
    assert [e.failed_steps for e in harness.emitted(ev.RunFailed)] == [["a"]]


async def test_parked_step_reuses_once_the_identical_step_finishes(
    harness: SchedulerHarness,
) -> None:
    """An identical step already running in another run is not run twice: the second run's
    step waits and is completed by reuse when the first one's result arrives."""
    await harness.start_run(pipeline(step("a")), run_id="run-1")
    emitted = await harness.start_run(pipeline(step("a")), run_id="run-2")
    assert _dispatched(emitted) == []
    await harness.run_step("run-1", "a", 1)
    reused = harness.new(ev.StepReused)
    assert [(e.run_id, e.source_run_id) for e in reused] == [("run-2", "run-1")]
    assert await harness.run_status("run-2") == "Completed"


async def test_cancel_stops_dispatch_and_late_results_are_ignored(
    harness: SchedulerHarness,
) -> None:
    """A canceled run's steps end Canceled; a result arriving afterwards changes nothing."""
    await harness.start_run(pipeline(step("a")))
    await harness.deliver(ev.RunCancelRequested(run_id="run-1", reason="user"))
    assert [e.type for e in harness.new()] == [ev.StepCanceled.type, ev.RunCanceled.type]
    await harness.deliver(harness.uploaded("run-1", "a", 1))
    assert harness.new() == []
    assert await harness.run_status() == "Canceled"
    assert (await harness.steps())["a"] == ("Canceled", 1)


async def _queued_run(
    harness: SchedulerHarness, *, regenerate_outputs: bool, spec: PipelineSpec | None = None
) -> None:
    """Record run-1 as the API does, as if accepted a minute ago and never started."""
    spec = spec or pipeline(step("a"))
    async with harness.pool.acquire() as conn:
        await insert_queued_run(
            conn,  # type: ignore[arg-type]  # a pool's connection proxy
            "run-1",
            "exp",
            spec.model_dump(mode="json"),
            {},
            regenerate_outputs,
            {},
        )
        await conn.execute(
            "UPDATE runs SET created_at = now() - interval '1 minute' WHERE run_id = 'run-1'"
        )


async def test_watchdog_resends_run_request_with_its_options(harness: SchedulerHarness) -> None:
    """A Queued run whose request was lost is requested again with the options the user gave,
    ``regenerate_outputs`` included, so the resent request cannot reuse."""
    await _queued_run(harness, regenerate_outputs=True)
    await harness.watchdog.sweep()
    resent = harness.new(ev.RunRequested)
    assert [(r.run_id, r.regenerate_outputs) for r in resent] == [("run-1", True)]


async def test_run_request_is_applied_from_the_recorded_run(harness: SchedulerHarness) -> None:
    """A request that lost ``regenerate_outputs`` on the way (an old copy, a resend) does not
    override what was recorded at submit: the step is dispatched, not reused."""
    await harness.record_prerequisites(pipeline(step("a")))
    await harness.start_run(pipeline(step("a")), run_id="run-0")
    await harness.run_step("run-0", "a", 1)
    await _queued_run(harness, regenerate_outputs=True)
    await harness.deliver(
        ev.RunRequested(run_id="run-1", experiment="exp", pipeline=pipeline(step("a")))
    )
    emitted = harness.new()
    assert _dispatched(emitted) == [("a", 1)]
    assert [e for e in emitted if isinstance(e, ev.StepReused)] == []


async def test_watchdog_fails_a_run_whose_request_cannot_be_sent(
    harness: SchedulerHarness,
) -> None:
    """A Queued run whose request would be over the event limit (recorded before the limit
    existed, say) is failed with the reason instead of being resent forever."""
    spec = pipeline(step("a", arguments=[LiteralArg(value="x" * (MAX_EVENT_BYTES + 10))]))
    await _queued_run(harness, regenerate_outputs=False, spec=spec)
    await harness.watchdog.sweep()
    [failed] = harness.new(ev.RunFailed)
    assert "over headrace's limit" in failed.reason
    assert await harness.run_status() == "Failed"


def _started(attempt: int = 1, runner: str = "runner-t") -> ev.StepAttemptStarted:
    return ev.StepAttemptStarted(run_id="run-1", step="a", attempt=attempt, runner_id=runner, pid=1)


async def test_forged_upload_cannot_complete_a_running_step(harness: SchedulerHarness) -> None:
    """An ``ArtifactsUploaded`` for an attempt whose script is still running (forged by
    anyone who can write to the broker) is refused, and the step stays Running."""
    await harness.start_run(pipeline(step("a")))
    await harness.claim("run-1", "a", 1)
    await harness.deliver(_started())
    with pytest.raises(ResultRefused, match="has not finished"):
        await harness.deliver(harness.uploaded("run-1", "a", 1))
    assert (await harness.steps())["a"] == ("Running", 1)
    assert harness.emitted(ev.StepCompleted) == []


async def test_upload_with_other_outputs_is_refused(harness: SchedulerHarness) -> None:
    """Outputs committed anywhere but where the attempt's dispatch sent them are refused, so
    a later identical run can never reuse an attacker's data."""
    await harness.start_run(pipeline(step("a", outputs=[StepOutput(name="m")])))
    await harness.claim("run-1", "a", 1)
    await harness.finish("run-1", "a", 1)
    good = harness.uploaded("run-1", "a", 1)
    forged = good.model_copy(
        update={"outputs": [good.outputs[0].model_copy(update={"path": "evil/place"})]}
    )
    with pytest.raises(ResultRefused, match="not the dispatched ones"):
        await harness.deliver(forged)
    await harness.deliver(good)
    assert (await harness.steps())["a"] == ("Completed", 1)


async def test_results_from_another_runner_or_outcome_are_refused(
    harness: SchedulerHarness,
) -> None:
    """A start event from a runner that does not hold the attempt, or an upload claiming
    success for a script its runner recorded as failed, changes nothing."""
    await harness.start_run(pipeline(step("a")))
    await harness.claim("run-1", "a", 1)
    with pytest.raises(ResultRefused, match="held by runner"):
        await harness.deliver(_started(runner="intruder"))
    await harness.deliver(_started())
    await harness.finish("run-1", "a", 1, ok=False)
    with pytest.raises(ResultRefused, match="runner recorded"):
        await harness.deliver(harness.uploaded("run-1", "a", 1, ok=True))
    await harness.deliver(harness.uploaded("run-1", "a", 1, ok=False))
    assert (await harness.steps())["a"] == ("Failed", 1)


async def test_result_for_an_unclaimed_attempt_is_refused(harness: SchedulerHarness) -> None:
    """No runner claimed the attempt: a start event for it is refused."""
    await harness.start_run(pipeline(step("a")))
    with pytest.raises(ResultRefused, match="never claimed"):
        await harness.deliver(_started())
