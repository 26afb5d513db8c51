"""``DataTransferStep``: copy data between datastores without a runner.

The copy streams from one object store to the other (any kinds), so it needs neither scratch
space nor a runner slot. The destination is a directory: a single source object lands in it
under its own name, a source prefix is copied below it with relative paths kept. The result
is the ``ArtifactsUploaded`` a script step's outputs produce, so the scheduler completes,
retries or fails transfer steps exactly like script steps.
"""

from __future__ import annotations

import hashlib
import posixpath

import structlog

from contracts import events as ev
from contracts.envelope import DecodedEvent
from services.runtime.errors import PermanentError
from services.runtime.outbox import Delivery
from services.runtime.storage import open_named

__all__ = ["DataTransferHandlers"]

_log = structlog.get_logger("headrace.data_transfer")


class DataTransferHandlers:
    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def _copy(self, event: ev.DataTransferRequested) -> ev.UploadedOutput:
        pool = self.delivery.pool
        source, dest = event.source, event.destination
        src = await open_named(pool, source.datastore)
        dst = await open_named(pool, dest.datastore)
        objects = await src.identity(source.path)
        if not objects:
            raise PermanentError(
                f"nothing to transfer at path {source.path!r} on datastore {source.datastore!r}"
            )
        single = len(objects) == 1 and objects[0][0].rstrip("/") == source.path.rstrip("/")
        target = (
            f"{dest.path}/{posixpath.basename(source.path.rstrip('/'))}" if single else dest.path
        )
        await src.copy_to(dst, source.path, target)
        # The output's identity: each copied object's relative path, size and ETag (the bytes
        # went store to store and were never seen whole here).
        h = hashlib.sha256()
        base = source.path.rstrip("/")
        for key, size, etag in sorted(objects):
            rel = posixpath.basename(key) if single else key[len(base) :].lstrip("/")
            h.update(f"{rel}\0{size}\0{etag}\n".encode())
        return ev.UploadedOutput(
            name=dest.name,
            datastore=dest.datastore,
            path=dest.path,
            files=len(objects),
            bytes=sum(size for _, size, _ in objects),
            digest="sha256:" + h.hexdigest(),
        )

    async def on_transfer_requested(
        self, event: ev.DataTransferRequested, decoded: DecodedEvent
    ) -> None:
        if await self.delivery.seen(decoded):
            return
        outputs: list[ev.UploadedOutput] = []
        error: str | None = None
        try:
            outputs = [await self._copy(event)]
            _log.info("data_transfer.copied", files=outputs[0].files, bytes=outputs[0].bytes)
        except (PermanentError, OSError) as exc:
            error = (
                f"data transfer from {event.source.datastore}:{event.source.path} to "
                f"{event.destination.datastore}: {exc}"
            )
            _log.warning("data_transfer.failed", reason=error)
        async with self.delivery.transaction(decoded) as tx:
            tx.emit(
                ev.ArtifactsUploaded(
                    run_id=event.run_id,
                    step=event.step,
                    attempt=event.attempt,
                    outputs=outputs,
                    metrics=0,
                    outcome="error" if error else "succeeded",
                    error=error,
                )
            )
