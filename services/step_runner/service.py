"""Step runner wiring: one consumer in the compute target's group, one step at a time."""

from __future__ import annotations

from contracts import events as ev
from services.runtime.bus import Subscription
from services.runtime.service import Service
from services.step_runner.handlers import StepRunnerHandlers
from services.step_runner.launcher import ExecLauncher, ForkServerLauncher, Launcher
from services.step_runner.settings import StepRunnerSettings

__all__ = ["StepRunnerService"]


class StepRunnerService(Service):
    """Runs dispatched steps of one compute target; add processes to add throughput."""

    name = "step_runner"

    def __init__(self, settings: StepRunnerSettings, *, instance_id: str | None = None) -> None:
        super().__init__(settings, instance_id=instance_id or settings.runner_id)
        self.runner_settings = settings

    async def on_start(self) -> None:
        self.launcher: Launcher = (
            ForkServerLauncher() if self.runner_settings.forkserver else ExecLauncher()
        )

    async def on_stop(self) -> None:
        await self.launcher.close()

    def compute_targets(self) -> list[str]:
        return [self.runner_settings.compute_target]

    async def subscriptions(self) -> list[Subscription]:
        target = self.runner_settings.compute_target
        group = f"runner-{target}"
        h = StepRunnerHandlers(self.runner_settings, self.delivery(group), self.launcher)
        return [
            Subscription(
                group=group,
                topics=[self.topics.dispatch(target)],
                handlers={ev.StepDispatched: h.on_step_dispatched},
                max_records=1,
            )
        ]
