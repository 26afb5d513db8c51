"""Scheduler wiring: run requests and phase results, each its own consumer group."""

from __future__ import annotations

from contracts import events as ev
from services.runtime.bus import Subscription
from services.runtime.service import Service
from services.scheduler.handlers import SchedulerHandlers
from services.scheduler.settings import SchedulerSettings
from services.scheduler.watchdog import Watchdog

__all__ = ["SchedulerService"]


class SchedulerService(Service):
    """Consumes run requests and every phase result; the only decision maker."""

    name = "scheduler"

    def __init__(self, settings: SchedulerSettings, *, instance_id: str | None = None) -> None:
        super().__init__(settings, instance_id=instance_id)
        self.scheduler_settings = settings

    async def subscriptions(self) -> list[Subscription]:
        runs_group, results_group = "scheduler-runs", "scheduler-results"
        h = SchedulerHandlers(
            self.scheduler_settings, self.delivery(runs_group), self.delivery(results_group)
        )
        self.watchdog = Watchdog(self.scheduler_settings, h, self.delivery("scheduler-watchdog"))
        self.spawn(self.watchdog.run())
        return [
            Subscription(
                group=runs_group,
                topics=[self.topics.run_requests],
                handlers={
                    ev.RunRequested: h.on_run_requested,
                    ev.RunCancelRequested: h.on_cancel_requested,
                },
            ),
            Subscription(
                group=results_group,
                topics=[self.topics.results],
                handlers={
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
                },
            ),
        ]
