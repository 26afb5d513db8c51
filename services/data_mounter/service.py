"""Data mounter wiring."""

from __future__ import annotations

from contracts import events as ev
from services.data_mounter.handlers import DataMounterHandlers
from services.data_mounter.settings import DataMounterSettings
from services.runtime.bus import Subscription
from services.runtime.service import Service

__all__ = ["DataMounterService"]


class DataMounterService(Service):
    """Consumes mount requests; emits mounted/failed results."""

    name = "data_mounter"

    def __init__(self, settings: DataMounterSettings, *, instance_id: str | None = None) -> None:
        super().__init__(settings, instance_id=instance_id)
        self.mounter_settings = settings
        #: the handlers, once subscribed (their ``cache`` counts downloads and hits)
        self.handlers: DataMounterHandlers | None = None

    async def subscriptions(self) -> list[Subscription]:
        group = "data-mounter"
        self.handlers = h = DataMounterHandlers(self.mounter_settings, self.delivery(group))
        return [
            Subscription(
                group=group,
                topics=[self.topics.data],
                handlers={ev.DataMountRequested: h.on_mount_requested},
            )
        ]
