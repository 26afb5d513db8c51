"""Verify a snapshot once per digest and tell the scheduler whether it can be used."""

from __future__ import annotations

import structlog

from contracts import events as ev
from contracts.envelope import DecodedEvent
from services.runtime.outbox import Delivery
from services.runtime.snapshots import SnapshotError, verify
from services.runtime.storage import default_datastore, open_datastore
from services.snapshotter import store

__all__ = ["SnapshotterHandlers"]

_log = structlog.get_logger("headrace.snapshotter")


class SnapshotterHandlers:
    def __init__(self, delivery: Delivery) -> None:
        self.delivery = delivery

    async def on_snapshot_requested(
        self, event: ev.SnapshotRequested, decoded: DecodedEvent
    ) -> None:
        known = await store.known_status(self.delivery.pool, event.digest)
        result: ev.Event
        if known is not None:
            result = (
                ev.SnapshotReady(
                    run_id=event.run_id,
                    digest=event.digest,
                    files=known["files"],
                    bytes=known["bytes"],
                )
                if known["status"] == "ready"
                else ev.SnapshotFailed(
                    run_id=event.run_id, digest=event.digest, reason=known["reason"] or "rejected"
                )
            )
            async with self.delivery.transaction(decoded) as tx:
                tx.emit(result)
            return
        datastore = open_datastore(await default_datastore(self.delivery.pool))
        try:
            manifest = await verify(datastore, event.digest)
        except SnapshotError as exc:
            _log.warning("snapshotter.rejected", digest=event.digest, reason=str(exc))
            async with self.delivery.transaction(decoded) as tx:
                await store.record(tx.conn, event.digest, "failed", 0, 0, str(exc))
                tx.emit(
                    ev.SnapshotFailed(run_id=event.run_id, digest=event.digest, reason=str(exc))
                )
            return
        async with self.delivery.transaction(decoded) as tx:
            await store.record(
                tx.conn, event.digest, "ready", len(manifest.files), manifest.total_bytes, None
            )
            tx.emit(
                ev.SnapshotReady(
                    run_id=event.run_id,
                    digest=event.digest,
                    files=len(manifest.files),
                    bytes=manifest.total_bytes,
                )
            )
        _log.info("snapshotter.verified", digest=event.digest, files=len(manifest.files))
