"""Scheduler wiring: run requests and phase results, each its own consumer group."""

from __future__ import annotations

from collections.abc import Mapping

from contracts import events as ev
from services.runtime.bus import Handler, Subscription
from services.runtime.service import Service
from services.scheduler.handlers import SchedulerHandlers
from services.scheduler.settings import SchedulerSettings
from services.scheduler.watchdog import Watchdog

__all__ = ["RESULTS_GROUP", "RUNS_GROUP", "SchedulerService", "result_routes", "run_routes"]

RUNS_GROUP = "scheduler-runs"
RESULTS_GROUP = "scheduler-results"
WATCHDOG_GROUP = "scheduler-watchdog"


def run_routes(h: SchedulerHandlers) -> Mapping[type[ev.Event], Handler]:
    """Which handler takes each event of the run-request topic."""
    return {
        ev.RunRequested: h.on_run_requested,
        ev.RunCancelRequested: h.on_cancel_requested,
    }


def result_routes(h: SchedulerHandlers) -> Mapping[type[ev.Event], Handler]:
    """Which handler takes each phase result.

    One table used by the service and by the fast tests' harness, so both route alike.
    """
    return {
        ev.SnapshotReady: h.on_snapshot_ready,
        ev.SnapshotFailed: h.on_snapshot_failed,
        ev.EnvironmentReady: h.on_environment_ready,
        ev.EnvironmentFailed: h.on_environment_failed,
        ev.DataMounted: h.on_data_mounted,
        ev.DataMountFailed: h.on_data_mount_failed,
        ev.StepAttemptStarted: h.on_attempt_started,
        ev.StepAttemptFinished: h.on_attempt_finished,
        ev.ArtifactsUploaded: h.on_artifacts_uploaded,
        ev.ArtifactUploadFailed: h.on_artifact_upload_failed,
    }


class SchedulerService(Service):
    """Consumes run requests and every phase result; the only decision maker."""

    name = "scheduler"

    def __init__(self, settings: SchedulerSettings, *, instance_id: str | None = None) -> None:
        super().__init__(settings, instance_id=instance_id)
        self.scheduler_settings = settings

    async def subscriptions(self) -> list[Subscription]:
        h = SchedulerHandlers(
            self.scheduler_settings, self.delivery(RUNS_GROUP), self.delivery(RESULTS_GROUP)
        )
        self.watchdog = Watchdog(self.scheduler_settings, h, self.delivery(WATCHDOG_GROUP))
        self.spawn(self.watchdog.run())
        return [
            # the public input: other systems request runs without headrace's key
            Subscription(
                group=RUNS_GROUP,
                topics=[self.topics.run_requests],
                handlers=run_routes(h),
                accept_unsigned=True,
            ),
            Subscription(
                group=RESULTS_GROUP, topics=[self.topics.results], handlers=result_routes(h)
            ),
        ]
