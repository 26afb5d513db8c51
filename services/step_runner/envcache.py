"""The runner's local cache of built environments, bounded by a byte budget.

A step's environment is materialised from the archive the image builder published (no package
index is involved on the runner) and kept under ``root`` for the next step that needs it:

    root/<hex digest>/        the unpacked ``--target`` tree (goes on PYTHONPATH)
    root/.meta/<hex>.json     its size in bytes; the file's mtime is the last-used time
    root/.locks/<hex>.lock    flock: shared while in use, exclusive while being evicted
    root/.tmp/                downloads and unpacks in progress, renamed into place when done

Why flock and not only an in-process count: several runner processes may share one cache
directory, and an environment in use by a step of another process must not be deleted under
it. The size record avoids walking trees (tens of thousands of files for scikit-learn) on
every eviction pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from services.runtime.env_artifacts import EnvironmentArtifacts, digest_hex, unpack
from services.runtime.errors import PermanentError
from services.runtime.storage import ObjectStore

__all__ = ["CachedEnvironment", "EnvironmentCache", "EnvironmentUnavailable"]


class EnvironmentUnavailable(PermanentError):
    """The datastore has no built archive for this environment digest."""


@dataclass(frozen=True)
class CachedEnvironment:
    """One environment present in the cache (for eviction and inspection)."""

    digest_hex: str
    size: int
    last_used: float


class EnvironmentCache:
    """Environments by digest under ``root``, evicted least-recently-used past a budget."""

    def __init__(self, root: Path, budget_bytes: int) -> None:
        if budget_bytes < 0:
            raise ValueError("budget_bytes must be >= 0")
        self.root = root
        self.budget_bytes = budget_bytes
        self._meta = root / ".meta"
        self._locks = root / ".locks"
        self._tmp = root / ".tmp"
        for d in (root, self._meta, self._locks, self._tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._sweep_tmp()
        self._fetching: dict[str, asyncio.Lock] = {}
        self._in_use: dict[str, int] = {}
        self.downloads = 0  # archives fetched by this instance (observability, tests)

    def _sweep_tmp(self, max_age: float = 3600.0) -> None:
        """Remove leftovers of processes that died mid-download (old enough to be dead)."""
        cutoff = time.time() - max_age
        for entry in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if entry.lstat().st_mtime < cutoff:
                    shutil.rmtree(entry, ignore_errors=True)

    def path(self, digest: str) -> Path:
        """Where ``digest``'s tree is (or would be) unpacked."""
        return self.root / digest_hex(digest)

    async def ensure(self, digest: str, store: ObjectStore) -> Path:
        """The local tree of ``digest``, downloading it on a miss.

        The environment is protected from eviction only during this call; a caller that
        runs a step in it should hold ``use`` for the step's lifetime instead.
        """
        async with self.use(digest, store) as path:
            return path

    @contextlib.asynccontextmanager
    async def use(self, digest: str, store: ObjectStore) -> AsyncIterator[Path]:
        """Hold ``digest``'s tree for the block: it is present and will not be evicted."""
        hexd = digest_hex(digest)
        fd = await self._acquire_shared(hexd)
        self._in_use[hexd] = self._in_use.get(hexd, 0) + 1
        try:
            path = await self._materialise(digest, hexd, store)
            await self.evict(keep=hexd)
            yield path
        finally:
            count = self._in_use[hexd] - 1
            if count:
                self._in_use[hexd] = count
            else:
                del self._in_use[hexd]
            os.close(fd)  # releases the shared flock

    async def _acquire_shared(self, hexd: str) -> int:
        fd = os.open(self._locks / f"{hexd}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                # Another process is evicting it right now; wait for it off the event loop.
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_SH)
        except BaseException:
            os.close(fd)
            raise
        return fd

    async def _materialise(self, digest: str, hexd: str, store: ObjectStore) -> Path:
        final = self.root / hexd
        if final.is_dir():
            self._touch(hexd)
            return final
        lock = self._fetching.setdefault(hexd, asyncio.Lock())
        async with lock:
            if final.is_dir():  # another task of this process fetched it meanwhile
                self._touch(hexd)
                return final
            await self._fetch(digest, hexd, store, final)
        return final

    async def _fetch(self, digest: str, hexd: str, store: ObjectStore, final: Path) -> None:
        key = EnvironmentArtifacts.archive_key(digest)
        work = self._tmp / f"{hexd}.{uuid.uuid4().hex}"
        work.mkdir(parents=True)
        try:
            archive = work / "env.tar"
            # Read before the download: the builder writes the record before the archive, so
            # a record read first belongs to an archive at least as complete as the one fetched.
            recorded = await EnvironmentArtifacts.recorded_archive(store, digest)
            try:
                await store.download(key, archive)
            except FileNotFoundError as exc:
                raise EnvironmentUnavailable(
                    f"environment {digest} is not built: datastore {store.name!r} has no "
                    f"{key}; build the environment before running steps in it"
                ) from exc
            self.downloads += 1
            if recorded is None:
                raise EnvironmentUnavailable(
                    f"environment {digest}: datastore {store.name!r} has its archive but no "
                    f"readable {EnvironmentArtifacts.info_key(digest)} (the archive's digest), "
                    "so it cannot be checked and is not used; have the operator remove "
                    f"{EnvironmentArtifacts.PREFIX}/{hexd}/ and the environment's ready record "
                    "so that the image builder builds it again"
                )
            await asyncio.to_thread(EnvironmentArtifacts.check_archive, digest, archive, recorded)
            tree = work / "tree"
            size = await asyncio.to_thread(unpack, archive, tree)
            archive.unlink()
            # The size record first: a record without its tree is harmless (eviction drops
            # it), a tree without a record would be invisible to eviction.
            self._write_meta(hexd, size)
            try:
                tree.rename(final)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
                    raise
                # Another process renamed the same environment in first: use theirs.
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    def _write_meta(self, hexd: str, size: int) -> None:
        tmp = self._meta / f".{hexd}.{uuid.uuid4().hex}"
        tmp.write_text(json.dumps({"size": size}))
        tmp.replace(self._meta / f"{hexd}.json")

    def _touch(self, hexd: str) -> None:
        meta = self._meta / f"{hexd}.json"
        try:
            os.utime(meta)
        except FileNotFoundError:
            tree = self.root / hexd
            self._write_meta(hexd, _tree_size(tree))

    def entries(self) -> list[CachedEnvironment]:
        """Every environment with a size record, least recently used first."""
        out: list[CachedEnvironment] = []
        for meta in self._meta.glob("*.json"):
            try:
                stat = meta.stat()
                size = int(json.loads(meta.read_text())["size"])
            except (OSError, ValueError, KeyError):
                continue
            out.append(CachedEnvironment(meta.stem, size, stat.st_mtime))
        return sorted(out, key=lambda e: (e.last_used, e.digest_hex))

    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries())

    async def evict(self, keep: str | None = None) -> list[str]:
        """Remove least-recently-used environments until the total fits the budget.

        Skips ``keep`` (a hex digest) and anything held by ``use`` in any process; returns
        the hex digests removed.
        """
        entries = self.entries()
        total = sum(e.size for e in entries)
        removed: list[str] = []
        for entry in entries:
            if total <= self.budget_bytes:
                break
            if entry.digest_hex == keep or entry.digest_hex in self._in_use:
                continue
            if await asyncio.to_thread(self._remove_if_unused, entry.digest_hex):
                total -= entry.size
                removed.append(entry.digest_hex)
        return removed

    def _remove_if_unused(self, hexd: str) -> bool:
        fd = os.open(self._locks / f"{hexd}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # in use by some process
            tree = self.root / hexd
            trash = self._tmp / f"evicted.{hexd}.{uuid.uuid4().hex}"
            with contextlib.suppress(FileNotFoundError):
                tree.rename(trash)  # atomic: readers see the whole tree or none
            (self._meta / f"{hexd}.json").unlink(missing_ok=True)
        finally:
            os.close(fd)
        shutil.rmtree(trash, ignore_errors=True)
        return True


def _tree_size(tree: Path) -> int:
    """Bytes of regular files under ``tree`` (only when a size record went missing)."""
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
