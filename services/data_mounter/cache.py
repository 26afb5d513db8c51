"""The node's cache of objects downloaded from remote datastores.

Why a cache: steps of one pipeline (and the next run of it) often read the same objects; each
download from S3 or Azure costs time and egress, a hard link costs nothing. Objects are cached
by *content identity* (where the datastore points, the key, the size and the ETag), so a changed
object (new ETag) is a new entry and a stale copy is never served; credentials are never part
of the identity, so rotating a key keeps the cache and no secret ends up in a file name.

Layout under ``root`` (``settings.cache / "data"``)::

    objects/<2 hex>/<sha256 hex>   the object's bytes, mode 0o444
    .tmp/                          downloads in progress, renamed into ``objects`` when complete

Entries are bound into an attempt's scratch by hard link: the step reads the cached inode
directly, and the link count tells the evictor whether a step still uses an entry (a step's
scratch holds a link until the uploader removes it). Entries are read-only so that a step
writing "its" input cannot change what the next step reads (root ignores modes, so this is a
guard against mistakes, not a security boundary).

Concurrency: one download per entry within a process (an ``asyncio.Lock`` per key); across
processes, each downloads to its own temporary name and renames atomically, so the entry is
always complete and the loser of a race merely replaced it with identical bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from services.runtime.errors import PermanentError
from services.runtime.storage import DatastoreRecord, ObjectStore

__all__ = [
    "CacheStats",
    "DataCache",
    "ObjectChanged",
    "cache_key",
    "identity_document",
    "link_or_copy",
]

_log = structlog.get_logger("headrace.data_mounter.cache")

#: The config fields that say *where* a datastore's objects are, per kind. An allow-list, not
#: "everything but the secrets", so that a credential field added later can never leak in.
_WHERE: dict[str, tuple[str, ...]] = {
    "local": ("root",),
    "s3": ("endpoint", "bucket", "prefix"),
    "azure_blob": ("endpoint", "use_emulator", "account_name", "container", "prefix"),
    "gcs": ("base_url", "bucket", "prefix"),
}


class ObjectChanged(PermanentError):
    """The object changed while it was being downloaded (its size or ETag differ from the
    listing); the caller lists again rather than caching bytes under a stale identity."""


def identity_document(record: DatastoreRecord, key: str, size: int, etag: str) -> dict[str, Any]:
    """What identifies an object's content: the datastore's kind and location (never its
    credentials), the key, the size and the ETag."""
    where: dict[str, Any] = {}
    for field in _WHERE.get(record.kind, ()):
        value = record.config.get(field)
        if isinstance(value, str):
            value = value.strip().strip("/") if field == "prefix" else value.strip().rstrip("/")
        if value not in (None, ""):
            where[field] = value
    return {"kind": record.kind, "where": where, "key": key, "size": size, "etag": etag}


def cache_key(record: DatastoreRecord, key: str, size: int, etag: str) -> str:
    """The cache entry name of an object: sha256 of its ``identity_document``."""
    doc = json.dumps(identity_document(record, key, size, etag), sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


def link_or_copy(source: Path, target: Path) -> str:
    """Hard-link ``source`` at ``target``; copy when a link is impossible (another filesystem,
    a filesystem without hard links, too many links). Returns ``"link"`` or ``"copy"``."""
    try:
        os.link(source, target)
        return "link"
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    shutil.copyfile(source, target)
    return "copy"


@dataclass(frozen=True)
class CacheStats:
    """Counters of one ``DataCache`` (observability, tests)."""

    downloads: int
    hits: int
    evictions: int
    downloaded_bytes: int


class DataCache:
    """Objects of remote datastores by content identity, evicted least-recently-used."""

    def __init__(self, root: Path, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError("budget_bytes must be >= 0")
        self.root = root
        self.budget_bytes = budget_bytes
        self._objects = root / "objects"
        self._tmp = root / ".tmp"
        for d in (self._objects, self._tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._sweep_tmp()
        self._locks: dict[str, asyncio.Lock] = {}
        self.downloads = 0
        self.hits = 0
        self.evictions = 0
        self.downloaded_bytes = 0

    def stats(self) -> CacheStats:
        return CacheStats(self.downloads, self.hits, self.evictions, self.downloaded_bytes)

    def _sweep_tmp(self, max_age: float = 3600.0) -> None:
        """Remove downloads left by processes that died mid-way (old enough to be dead)."""
        cutoff = time.time() - max_age
        for entry in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if entry.lstat().st_mtime < cutoff:
                    entry.unlink()

    def path(self, digest: str) -> Path:
        """Where the entry ``digest`` is (or would be)."""
        return self._objects / digest[:2] / digest

    async def fetch(self, store: ObjectStore, key: str, size: int, etag: str) -> Path:
        """The cached file of ``key`` (of ``size`` bytes with ``etag``), downloaded if absent.

        Raises ``ObjectChanged`` when the object no longer matches ``size``/``etag``.
        """
        return (await self._fetch(store, key, size, etag))[0]

    async def _fetch(self, store: ObjectStore, key: str, size: int, etag: str) -> tuple[Path, bool]:
        """(entry, whether this call downloaded it)."""
        digest = cache_key(store.record, key, size, etag)
        path = self.path(digest)
        lock = self._locks.setdefault(digest, asyncio.Lock())
        try:
            async with lock:
                if path.exists():
                    self.hits += 1
                    _touch(path)
                    return path, False
                await self._download(store, key, size, etag, path)
                return path, True
        finally:
            if not lock.locked():
                self._locks.pop(digest, None)

    async def _download(
        self, store: ObjectStore, key: str, size: int, etag: str, path: Path
    ) -> None:
        tmp = self._tmp / f"{path.name}.{uuid.uuid4().hex[:8]}"
        try:
            got = await store.download(key, tmp)
            if got != size:
                raise ObjectChanged(
                    f"datastore {store.name!r}: {key!r} changed while being downloaded "
                    f"({got} bytes, listed {size})"
                )
            if etag:
                # The GET itself does not tell its ETag through ObjectStore: a HEAD after it
                # proves the bytes are those of the listed version, so the entry's name is true.
                now = await store.identity(key)
                if [(s, e) for _, s, e in now] != [(size, etag)]:
                    raise ObjectChanged(
                        f"datastore {store.name!r}: {key!r} changed while being downloaded"
                    )
            os.chmod(tmp, 0o444)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.downloads += 1
        self.downloaded_bytes += size
        _log.info("data_cache.downloaded", datastore=store.name, key=key, bytes=size)

    def evict(self) -> int:
        """Delete least-recently-used entries until the cache fits its budget; return the
        bytes freed. Entries linked from a step's scratch (link count > 1) are kept: deleting
        them would free nothing while the step holds its link."""
        entries: list[tuple[float, int, Path]] = []
        total = 0
        for sub in self._objects.iterdir():
            with contextlib.suppress(OSError):
                for entry in os.scandir(sub):
                    with contextlib.suppress(OSError):
                        st = entry.stat(follow_symlinks=False)
                        total += st.st_size
                        if st.st_nlink <= 1:
                            entries.append((st.st_atime, st.st_size, Path(entry.path)))
        if total <= self.budget_bytes:
            return 0
        freed = 0
        for _, size, path in sorted(entries):
            if total - freed <= self.budget_bytes:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                freed += size
                self.evictions += 1
        _log.info("data_cache.evicted", bytes=freed, budget=self.budget_bytes)
        return freed

    async def bind(self, store: ObjectStore, key: str, size: int, etag: str, target: Path) -> str:
        """Place the object at ``target`` from the cache (hard link, else copy); return how.

        Retries once if another process evicted the entry between fetch and link.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        for attempt in (1, 2):
            source, downloaded = await self._fetch(store, key, size, etag)
            try:
                how = link_or_copy(source, target)
            except FileNotFoundError:
                if attempt == 2:
                    raise
                continue
            _touch(source)
            if downloaded:
                # Only a download grows the cache, so only then is the budget checked; after
                # the link, so that the entry just fetched is protected by its link count.
                await asyncio.to_thread(self.evict)
            return how
        raise AssertionError("unreachable")


def _touch(path: Path) -> None:
    """Mark an entry used now (atime is what eviction sorts on; relatime mounts would not
    update it on a read, and a hard link is not a read)."""
    with contextlib.suppress(OSError):
        os.utime(path)
