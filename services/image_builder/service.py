"""Image builder wiring."""

from __future__ import annotations

from contracts import events as ev
from services.image_builder.handlers import ImageBuilderHandlers
from services.image_builder.settings import ImageBuilderSettings
from services.runtime.bus import Subscription
from services.runtime.service import Service

__all__ = ["ImageBuilderService"]


class ImageBuilderService(Service):
    """Consumes environment requests; emits ready/failed results."""

    name = "image_builder"

    def __init__(self, settings: ImageBuilderSettings, *, instance_id: str | None = None) -> None:
        super().__init__(settings, instance_id=instance_id)
        self.builder_settings = settings

    async def subscriptions(self) -> list[Subscription]:
        group = "image-builder"
        h = ImageBuilderHandlers(self.builder_settings, self.delivery(group), self.instance_id)
        return [
            Subscription(
                group=group,
                topics=[self.topics.image],
                handlers={ev.EnvironmentRequested: h.on_environment_requested},
            )
        ]
