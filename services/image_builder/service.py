"""Image builder wiring."""

from __future__ import annotations

from contracts import events as ev
from services.image_builder.handlers import ImageBuilderHandlers
from services.runtime.bus import Subscription
from services.runtime.service import Service

__all__ = ["ImageBuilderService"]


class ImageBuilderService(Service):
    """Consumes environment requests; emits ready/failed results."""

    name = "image_builder"

    async def subscriptions(self) -> list[Subscription]:
        group = "image-builder"
        h = ImageBuilderHandlers(self.delivery(group))
        return [
            Subscription(
                group=group,
                topics=[self.topics.image],
                handlers={ev.EnvironmentRequested: h.on_environment_requested},
            )
        ]
