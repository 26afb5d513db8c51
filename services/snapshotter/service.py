"""Snapshotter wiring."""

from __future__ import annotations

from contracts import events as ev
from services.runtime.bus import Subscription
from services.runtime.service import Service
from services.snapshotter.handlers import SnapshotterHandlers

__all__ = ["SnapshotterService"]


class SnapshotterService(Service):
    """Consumes snapshot requests; emits ready/failed results."""

    name = "snapshotter"

    async def subscriptions(self) -> list[Subscription]:
        group = "snapshotter"
        h = SnapshotterHandlers(self.delivery(group))
        return [
            Subscription(
                group=group,
                topics=[self.topics.snapshot],
                handlers={ev.SnapshotRequested: h.on_snapshot_requested},
            )
        ]
