"""Artifact uploader wiring."""

from __future__ import annotations

from contracts import events as ev
from services.artifact_uploader.handlers import ArtifactUploaderHandlers
from services.artifact_uploader.settings import ArtifactUploaderSettings
from services.artifact_uploader.transfer import DataTransferHandlers
from services.runtime.bus import Subscription
from services.runtime.service import Service

__all__ = ["ArtifactUploaderService"]


class ArtifactUploaderService(Service):
    """Consumes upload requests and data transfers; emits uploaded/failed results."""

    name = "artifact_uploader"

    def __init__(
        self, settings: ArtifactUploaderSettings, *, instance_id: str | None = None
    ) -> None:
        super().__init__(settings, instance_id=instance_id)
        self.uploader_settings = settings

    async def subscriptions(self) -> list[Subscription]:
        group = "artifact-uploader"
        h = ArtifactUploaderHandlers(self.uploader_settings, self.delivery(group))
        transfers = DataTransferHandlers(self.delivery(group))
        return [
            Subscription(
                group=group,
                topics=[self.topics.upload],
                handlers={
                    ev.ArtifactUploadRequested: h.on_upload_requested,
                    ev.DataTransferRequested: transfers.on_transfer_requested,
                },
            )
        ]
