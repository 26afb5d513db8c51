"""Resolve environments for steps.

Only the default environment exists so far: the runner's own interpreter with the headrace
step runtime (``Run.get_context()``) importable. Its digest covers the Python version and the
headrace version, so a runner upgrade is visible in the record.
"""

from __future__ import annotations

import platform
from importlib import metadata

from contracts import events as ev
from contracts.envelope import DecodedEvent
from contracts.snapshot import digest_bytes
from services.image_builder import store
from services.runtime.outbox import Delivery

__all__ = ["DEFAULT_ENVIRONMENT", "ImageBuilderHandlers", "default_environment_digest"]

DEFAULT_ENVIRONMENT = "default"


def default_environment_digest() -> tuple[str, str]:
    """(digest, python version) of the default environment."""
    python = platform.python_version()
    try:
        version = metadata.version("headrace")
    except metadata.PackageNotFoundError:
        version = "0"
    return digest_bytes(f"python={python};headrace={version}".encode()), python


class ImageBuilderHandlers:
    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def on_environment_requested(
        self, event: ev.EnvironmentRequested, decoded: DecodedEvent
    ) -> None:
        async with self.delivery.transaction(decoded) as tx:
            if event.environment != DEFAULT_ENVIRONMENT:
                reason = (
                    f"environment {event.environment!r} is unknown; only the 'default' "
                    "environment (the runner's interpreter) is available in this version"
                )
                tx.emit(
                    ev.EnvironmentFailed(
                        run_id=event.run_id, environment=event.environment, reason=reason
                    )
                )
                return
            digest, python = default_environment_digest()
            await store.record(tx.conn, event.environment, "ready", digest, python, None)
            tx.emit(
                ev.EnvironmentReady(
                    run_id=event.run_id, environment=event.environment, digest=digest, python=python
                )
            )
