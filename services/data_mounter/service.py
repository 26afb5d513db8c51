"""Data mounter wiring."""

from __future__ import annotations

from contracts import events as ev
from services.data_mounter.handlers import DataMounterHandlers
from services.runtime.bus import Subscription
from services.runtime.service import Service

__all__ = ["DataMounterService"]


class DataMounterService(Service):
    """Consumes mount requests; emits mounted/failed results."""

    name = "data_mounter"

    async def subscriptions(self) -> list[Subscription]:
        group = "data-mounter"
        h = DataMounterHandlers(self.settings, self.delivery(group))
        return [
            Subscription(
                group=group,
                topics=[self.topics.data],
                handlers={ev.DataMountRequested: h.on_mount_requested},
            )
        ]
