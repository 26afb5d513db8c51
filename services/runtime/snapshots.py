"""Reading snapshots from the default datastore: verify (snapshotter), materialise (runners)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from pydantic import ValidationError

from contracts.snapshot import SnapshotManifest, blob_key, digest_bytes
from services.runtime.errors import PermanentError
from services.runtime.storage import ObjectStore

__all__ = ["SnapshotError", "load_manifest", "materialise", "verify"]


class SnapshotError(PermanentError):
    """The snapshot is missing, malformed, or a blob does not match its digest."""


async def load_manifest(store: ObjectStore, digest: str) -> SnapshotManifest:
    """Fetch the manifest blob, check its digest, and validate every path in it."""
    if not await store.exists(blob_key(digest)):
        raise SnapshotError(f"snapshot manifest {digest} was never uploaded")
    data = await store.get(blob_key(digest))
    if digest_bytes(data) != digest:
        raise SnapshotError(f"snapshot manifest {digest}: content does not match its digest")
    try:
        return SnapshotManifest.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc']}: {e['msg']}" for e in exc.errors(include_url=False))
        raise SnapshotError(f"snapshot manifest {digest} is malformed: {problems}") from exc


async def verify(store: ObjectStore, digest: str) -> SnapshotManifest:
    """Check that every blob of the snapshot exists, hashes to its digest and has the size
    the manifest says (sizes are client claims too: quotas and progress rely on them)."""
    manifest = await load_manifest(store, digest)
    for entry in manifest.files:
        key = blob_key(entry.digest)
        if not await store.exists(key):
            raise SnapshotError(f"{entry.path}: blob {entry.digest} was never uploaded")
        actual, size = await store.content_digest(key)
        if actual != entry.digest:
            raise SnapshotError(f"{entry.path}: blob content does not match digest {entry.digest}")
        if size != entry.size:
            raise SnapshotError(
                f"{entry.path}: the manifest says {entry.size} bytes but its blob holds {size} "
                "bytes; snapshot the source directory again with the SDK"
            )
    return manifest


async def materialise(store: ObjectStore, digest: str, cache: Path) -> Path:
    """The snapshot as a directory in the node cache, written once per digest (atomically)."""
    target = cache / "snapshots" / digest.removeprefix("sha256:")
    if target.is_dir():
        return target
    manifest = await load_manifest(store, digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    try:
        for entry in manifest.files:
            dest = tmp / entry.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            local = store.local_path(blob_key(entry.digest))
            if local is not None:
                shutil.copyfile(local, dest)
            else:
                dest.write_bytes(await store.get(blob_key(entry.digest)))
            if entry.executable:
                dest.chmod(0o755)
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # lost a race to another runner: theirs is identical
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
