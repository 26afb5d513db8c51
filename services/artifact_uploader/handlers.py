"""Commit a step attempt's outputs, logs and metrics from scratch to datastores.

Outputs go to the datastore each ``PipelineData`` names, under a path fixed by run, step and
output, so a redelivered request rewrites the same objects; the output's digest covers every
file's relative path and content. Scratch is removed once everything is recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import structlog

from contracts import events as ev
from contracts.envelope import DecodedEvent
from services.artifact_uploader import store
from services.artifact_uploader.errors import UploadError
from services.artifact_uploader.settings import ArtifactUploaderSettings
from services.runtime.errors import PermanentError
from services.runtime.mounts import unmount_under
from services.runtime.outbox import Delivery
from services.runtime.scratch import AttemptDir
from services.runtime.storage import (
    STREAM_CHUNK,
    ObjectStore,
    default_datastore,
    open_datastore,
    open_named,
)

__all__ = ["ArtifactUploaderHandlers", "read_metrics"]

_log = structlog.get_logger("headrace.artifact_uploader")


def read_metrics(path: Path) -> list[tuple[str, object, datetime]]:
    """Metrics the step logged with ``Run.log``; a malformed line is an error, not a skip."""
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            at = datetime.fromisoformat(item["time"]) if "time" in item else datetime.now(UTC)
            out.append((str(item["name"]), item["value"], at))
        except (ValueError, KeyError, TypeError) as exc:
            raise UploadError(f"metrics file line {number} is malformed: {exc}") from exc
    return out


def _file_digest(path: Path) -> bytes:
    """sha256 of a file, read in chunks: outputs may be larger than memory."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(STREAM_CHUNK):
            h.update(chunk)
    return h.digest()


async def _upload_tree(store_: ObjectStore, root: Path, prefix: str) -> tuple[int, int, str]:
    """Upload every file under ``root`` to ``prefix``; return (files, bytes, digest).

    Each file streams from disk (``upload_file``: multipart for large files on S3, Azure and
    GCS), so an output of any size uploads in bounded memory; its digest is computed in a
    second chunked read rather than by holding the file.
    """
    files = sorted(p for p in root.rglob("*") if p.is_file())
    h = hashlib.sha256()
    total = 0
    for path in files:
        rel = path.relative_to(root).as_posix()
        total += await store_.upload_file(path, f"{prefix}/{rel}")
        h.update(rel.encode() + b"\0" + await asyncio.to_thread(_file_digest, path))
    return len(files), total, "sha256:" + h.hexdigest()


class ArtifactUploaderHandlers:
    def __init__(self, settings: ArtifactUploaderSettings, delivery: Delivery) -> None:
        self.settings = settings
        self.delivery = delivery

    async def on_upload_requested(
        self, event: ev.ArtifactUploadRequested, decoded: DecodedEvent
    ) -> None:
        if await self.delivery.seen(decoded):
            return
        adir = AttemptDir.of(self.settings.scratch, event.run_id, event.step, event.attempt)
        pool = self.delivery.pool
        try:
            logs_store = open_datastore(await default_datastore(pool))
            base = f"runs/{event.run_id}/{event.step}/attempts/{event.attempt}/logs"
            logs: list[tuple[str, str, int]] = []
            for stream, path in (
                ("stdout", adir.stdout),
                ("stderr", adir.stderr),
                ("mount", adir.mount_log),
            ):
                if path.exists():
                    size = await logs_store.upload_file(path, f"{base}/{stream}.txt")
                    logs.append((stream, f"{base}/{stream}.txt", size))
            metrics = read_metrics(adir.metrics)
            outputs: list[ev.UploadedOutput] = []
            for target in event.outputs:
                out_store = await open_named(pool, target.datastore)
                files, size, digest = await _upload_tree(
                    out_store, adir.outputs / target.name, target.path
                )
                outputs.append(
                    ev.UploadedOutput(
                        name=target.name,
                        datastore=target.datastore,
                        path=target.path,
                        files=files,
                        bytes=size,
                        digest=digest,
                    )
                )
        except (PermanentError, OSError) as exc:
            _log.warning("artifact_uploader.failed", reason=str(exc))
            async with self.delivery.transaction(decoded) as tx:
                tx.emit(
                    ev.ArtifactUploadFailed(
                        run_id=event.run_id, step=event.step, attempt=event.attempt, reason=str(exc)
                    )
                )
            return
        async with self.delivery.transaction(decoded) as tx:
            await store.record_logs(
                tx.conn, event.run_id, event.step, event.attempt, logs_store.name, logs
            )
            await store.record_metrics(tx.conn, event.run_id, event.step, event.attempt, metrics)
            tx.emit(
                ev.ArtifactsUploaded(
                    run_id=event.run_id,
                    step=event.step,
                    attempt=event.attempt,
                    outputs=outputs,
                    metrics=len(metrics),
                    outcome=event.outcome,
                    exit_code=event.exit_code,
                    error=event.error,
                )
            )
        if not self.settings.keep_scratch:
            # The runner unmounts FUSE inputs when the step ends; a mount still live here (a
            # runner that died) must not be walked into by the removal.
            await unmount_under(adir.root)
            await asyncio.to_thread(shutil.rmtree, adir.root, True)
