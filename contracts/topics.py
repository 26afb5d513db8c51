"""The topic catalogue: which events go where.

One prefix per installation (and per test) keeps deployments and tests apart on one broker.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import events as ev

__all__ = ["Topics"]


@dataclass(frozen=True)
class Topics:
    """Topic names under one prefix."""

    prefix: str = "headrace."

    @property
    def run_requests(self) -> str:
        """Public input: run requests from the API, the SDK or other systems."""
        return f"{self.prefix}runs.requested"

    @property
    def public(self) -> str:
        """Public output: run and step lifecycle events."""
        return f"{self.prefix}events"

    @property
    def results(self) -> str:
        """Phase results, consumed by the scheduler."""
        return f"{self.prefix}phase.results"

    @property
    def snapshot(self) -> str:
        return f"{self.prefix}snapshot.requests"

    @property
    def image(self) -> str:
        return f"{self.prefix}image.requests"

    @property
    def data(self) -> str:
        return f"{self.prefix}data.requests"

    @property
    def upload(self) -> str:
        return f"{self.prefix}upload.requests"

    @property
    def deadletter(self) -> str:
        """Events that could not be parsed or handled, with the reason in headers."""
        return f"{self.prefix}deadletter"

    def dispatch(self, compute_target: str) -> str:
        """Step dispatches for the runners of one compute target."""
        return f"{self.prefix}steps.{compute_target}"

    def for_event(self, event: ev.Event) -> str:
        """The topic an event is published to."""
        match event:
            case ev.RunRequested() | ev.RunCancelRequested():
                return self.run_requests
            case ev.SnapshotRequested():
                return self.snapshot
            case ev.EnvironmentRequested():
                return self.image
            case ev.DataMountRequested():
                return self.data
            case ev.ArtifactUploadRequested() | ev.DataTransferRequested():
                return self.upload
            case ev.StepDispatched():
                return self.dispatch(event.compute_target)
            case _ if event.public:
                return self.public
            case _:
                return self.results

    def fixed(self) -> list[str]:
        """Topics created at start (dispatch topics are added per compute target)."""
        return [
            self.run_requests,
            self.public,
            self.results,
            self.snapshot,
            self.image,
            self.data,
            self.upload,
            self.deadletter,
        ]
