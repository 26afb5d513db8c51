"""Schedule firer wiring: no consumer, a loop that looks for due schedules.

Why a service of its own rather than a loop in the scheduler: polling datastore triggers lists
and hashes objects, work that must not delay the scheduler's reaction to phase results; the
firer starts runs the way any other system does (a ``RunRequested`` on the public topic), so
the scheduler needs no special case; and it scales and restarts on its own. Its exactly-once
rests on PostgreSQL row locks, so any number of instances may run.
"""

from __future__ import annotations

import asyncio

import structlog

from services.runtime.bus import Subscription
from services.runtime.service import Service
from services.schedule_firer.handlers import Clock, ScheduleFirerHandlers, utc_now
from services.schedule_firer.settings import ScheduleFirerSettings

__all__ = ["ScheduleFirerService"]

_log = structlog.get_logger("headrace.schedule_firer")
GROUP = "schedule-firer"


class ScheduleFirerService(Service):
    """Fires due schedules every ``tick_seconds``."""

    name = "schedule_firer"

    def __init__(
        self,
        settings: ScheduleFirerSettings,
        *,
        instance_id: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(settings, instance_id=instance_id)
        self.firer_settings = settings
        self.clock = clock

    async def subscriptions(self) -> list[Subscription]:
        self.handlers = ScheduleFirerHandlers(
            self.firer_settings, self.delivery(GROUP), clock=self.clock
        )
        self.spawn(self._loop())
        return []

    async def _loop(self) -> None:
        """Look forever; a failed look is logged and the next one tries again."""
        while True:
            try:
                await self.handlers.tick()
            except Exception as exc:  # the database may be restarting: try again later
                _log.warning("schedule_firer.tick_failed", error=str(exc))
            await asyncio.sleep(self.firer_settings.tick_seconds)
