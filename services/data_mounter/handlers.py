"""Bind each input of a step into its scratch area.

On a local datastore, mount mode is a symbolic link to the data (read-only by convention, no
copy) and download mode a copy. On a remote datastore (S3, Azure Blob, GCS), download mode
hard-links the objects from the node's data cache (``cache.DataCache``: downloaded once per
content identity, shared by every step on the node), and mount mode is a read-only FUSE mount
with rclone (``fuse.FuseMounter``) where the machine and the kind allow it. Otherwise mount mode
falls back to the download and says why in the step's mount log, as the seed does.

Errors name the input, the datastore and the path, never a credential: ``ObjectStore`` builds
its messages without them, and rclone gets them only in its own environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Literal

import structlog

from contracts import events as ev
from contracts.envelope import DecodedEvent
from contracts.snapshot import safe_relative_path
from services.data_mounter import store
from services.data_mounter.cache import DataCache, ObjectChanged
from services.data_mounter.errors import InputDataError
from services.data_mounter.fuse import FuseMounter, MountError
from services.data_mounter.settings import DataMounterSettings
from services.runtime.errors import PermanentError
from services.runtime.mounts import is_fuse_mount, unmount, unmount_under
from services.runtime.outbox import Delivery
from services.runtime.scratch import AttemptDir
from services.runtime.storage import DatastoreError, InvalidKey, ObjectStore, open_named

__all__ = ["DataMounterHandlers", "bind_input", "mount_root"]

_log = structlog.get_logger("headrace.data_mounter")

#: How often a download is retried when the object changes under it.
_CHANGED_RETRIES = 3

Method = Literal["link", "copy", "fuse"]


def mount_root(adir: AttemptDir) -> Path:
    """Where an attempt's FUSE mount points are: beside ``inputs/``, which holds symbolic
    links into them, so that an input naming one object can be that object's path."""
    return adir.root / ".mounts"


def _existing(target: Path, mounts: Path) -> Method:
    """How an already-bound ``target`` was bound (a redelivered request)."""
    if target.is_symlink():
        link = os.readlink(target)
        return "fuse" if Path(link).is_relative_to(mounts) else "link"
    return "copy"


async def bind_input(
    datastore: ObjectStore,
    inp: ev.ResolvedInput,
    target: Path,
    *,
    cache: DataCache | None = None,
    mounter: FuseMounter | None = None,
    mounts: Path | None = None,
    lifetime_seconds: float = 3600.0,
) -> tuple[ev.MountedInput, str | None]:
    """Link, mount or copy one input to ``target``; return the binding and an optional note.

    ``cache`` and ``mounter`` serve remote datastores (without a cache, objects are downloaded
    straight into scratch; without a mounter, mount mode copies); ``mounts`` is where FUSE
    mount points go (default: ``.mounts`` beside the inputs directory); ``lifetime_seconds``
    bounds how long a mount's credentials must stay valid (the step's timeout).
    """
    mounts = mounts if mounts is not None else target.parent.parent / ".mounts"
    try:
        source = datastore.local_path(inp.path)
    except ValueError as exc:
        raise InputDataError(
            f"input {inp.name!r}: path {inp.path!r} escapes datastore {datastore.name!r}"
        ) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        # Bound already (a redelivered request): never unbind under a step that may be
        # reading it. One attempt's inputs are fixed once bound. The exception is a link into
        # a mount that is gone (the node restarted): no step can be reading through it.
        method = _existing(target, mounts)
        if method != "fuse" or is_fuse_mount(mounts / inp.name):
            return ev.MountedInput(name=inp.name, local_path=str(target), method=method), None
        target.unlink()
    if source is not None:
        return await _bind_local(datastore, inp, source, target)
    return await _bind_remote(datastore, inp, target, cache, mounter, mounts, lifetime_seconds)


async def _bind_local(
    datastore: ObjectStore, inp: ev.ResolvedInput, source: Path, target: Path
) -> tuple[ev.MountedInput, str | None]:
    if inp.pipeline_data and not await datastore.listing(inp.path):
        # The upstream step committed an empty output: bind an empty directory.
        target.mkdir(parents=True, exist_ok=True)
        return ev.MountedInput(name=inp.name, local_path=str(target), method="copy"), None
    if not source.exists():
        raise InputDataError(
            f"input {inp.name!r}: nothing at path {inp.path!r} on datastore "
            f"{datastore.name!r}; upload it first (Datastore.upload_files)"
        )
    if inp.mode == "mount":
        os.symlink(source, target, target_is_directory=source.is_dir())
        return ev.MountedInput(name=inp.name, local_path=str(target), method="link"), None
    await asyncio.to_thread(_copy, source, target)
    return ev.MountedInput(name=inp.name, local_path=str(target), method="copy"), None


async def _identity(datastore: ObjectStore, inp: ev.ResolvedInput) -> list[tuple[str, int, str]]:
    """(key, size, ETag) of what the input names; errors name the input and datastore."""
    key = inp.path.strip("/")
    try:
        return await datastore.identity(key) if key else await datastore.list_meta("")
    except InvalidKey as exc:
        raise InputDataError(
            f"input {inp.name!r}: path {inp.path!r} escapes datastore {datastore.name!r} ({exc})"
        ) from None
    except DatastoreError as exc:
        raise InputDataError(f"input {inp.name!r}: {exc}") from None


async def _bind_remote(
    datastore: ObjectStore,
    inp: ev.ResolvedInput,
    target: Path,
    cache: DataCache | None,
    mounter: FuseMounter | None,
    mounts: Path,
    lifetime_seconds: float,
) -> tuple[ev.MountedInput, str | None]:
    key = inp.path.strip("/")
    objects = await _identity(datastore, inp)
    if not objects:
        if inp.pipeline_data:
            # The upstream step committed an empty output: bind an empty directory.
            target.mkdir(parents=True, exist_ok=True)
            return ev.MountedInput(name=inp.name, local_path=str(target), method="copy"), None
        raise InputDataError(
            f"input {inp.name!r}: nothing at path {inp.path!r} on datastore {datastore.name!r}; "
            "check the path, and that the object was uploaded to this datastore"
        )
    single = len(objects) == 1 and objects[0][0] == key
    reason: str | None = None
    if inp.mode == "mount":
        reason = (
            "FUSE mounts are disabled" if mounter is None else mounter.unsupported(datastore.record)
        )
        if mounter is not None and reason is None:
            parent, _, base = key.rpartition("/") if single else (key, "", "")
            mountpoint = mounts / inp.name
            if is_fuse_mount(mountpoint):  # left by a handler that died before linking
                await unmount(mountpoint)
            try:
                await mounter.mount(
                    datastore.record,
                    parent,
                    mountpoint,
                    probe=base or None,
                    lifetime_seconds=lifetime_seconds,
                )
            except MountError as exc:
                reason = str(exc)
            else:
                os.symlink(mountpoint / base if single else mountpoint, target)
                return ev.MountedInput(name=inp.name, local_path=str(target), method="fuse"), None
    for attempt in range(1, _CHANGED_RETRIES + 1):
        try:
            method = await _download(datastore, inp, objects, single, target, cache)
            break
        except ObjectChanged as exc:
            if attempt == _CHANGED_RETRIES:
                raise InputDataError(
                    f"input {inp.name!r}: {exc}; it keeps changing, retry when writers are done"
                ) from None
            objects = await _identity(datastore, inp)
            single = len(objects) == 1 and objects[0][0] == key
    note = None
    if reason is not None:
        note = (
            f"input {inp.name!r}: datastore {datastore.name!r} cannot be mounted here "
            f"({reason}); copied"
        )
    return ev.MountedInput(name=inp.name, local_path=str(target), method=method), note


async def _download(
    datastore: ObjectStore,
    inp: ev.ResolvedInput,
    objects: list[tuple[str, int, str]],
    single: bool,
    target: Path,
    cache: DataCache | None,
) -> Method:
    """Place the objects at ``target`` (a file for one object, else a directory tree) through
    a temporary sibling renamed at the end, so a redelivery never sees a partial input."""
    key = inp.path.strip("/")
    tmp = target.with_name(f".{target.name}.tmp")
    await asyncio.to_thread(_remove, tmp)
    places: list[tuple[str, int, str, Path]] = []
    for path, size, etag in objects:
        if single:
            places.append((path, size, etag, tmp))
            continue
        rel = path[len(key) :].lstrip("/") if key else path
        try:
            # Keys are the store's, but S3 allows "a/../../b": never write outside the input.
            places.append((path, size, etag, tmp / safe_relative_path(rel)))
        except ValueError:
            raise InputDataError(
                f"input {inp.name!r}: object {path!r} on datastore {datastore.name!r} has a "
                "name that cannot be a file path; rename it"
            ) from None
    try:
        for path, size, etag, dest in places:
            if cache is not None:
                await cache.bind(datastore, path, size, etag, dest)
            else:
                await datastore.download(path, dest)
    except BaseException as exc:
        await asyncio.to_thread(_remove, tmp)
        if isinstance(exc, DatastoreError):
            raise InputDataError(f"input {inp.name!r}: {exc}") from None
        raise
    tmp.rename(target)
    # Hard links are copies as far as the step can tell (its own names, no link to follow).
    return "copy"


async def _undo_mounts(adir: AttemptDir) -> None:
    """Unmount an attempt's FUSE inputs and remove the links into them."""
    await unmount_under(adir.root)
    mounts = mount_root(adir)
    # Input names may nest (a dataset's files are "<name>/<n>"); links are never followed.
    for dirpath, dirnames, filenames in os.walk(adir.inputs):
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            if entry.is_symlink() and _existing(entry, mounts) == "fuse":
                entry.unlink()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _copy(source: Path, target: Path) -> None:
    """Copy next to ``target`` then rename, so a half-copied input is never visible."""
    tmp = target.with_name(f".{target.name}.tmp")
    _remove(tmp)
    if source.is_dir():
        shutil.copytree(source, tmp)
    else:
        shutil.copyfile(source, tmp)
    tmp.rename(target)


class DataMounterHandlers:
    def __init__(self, settings: DataMounterSettings, delivery: Delivery) -> None:
        self.settings = settings
        self.delivery = delivery
        self.cache = DataCache(settings.data_cache, settings.data_cache_bytes)
        self.mounter = (
            FuseMounter(settings.data_cache / ".mountlogs", settings.mount_options())
            if settings.fuse_mounts
            else None
        )

    async def on_mount_requested(self, event: ev.DataMountRequested, decoded: DecodedEvent) -> None:
        if await self.delivery.seen(decoded) or await store.attempt_claimed(
            self.delivery.pool, event.run_id, event.step, event.attempt
        ):
            return  # a redelivered request for an attempt a runner already started
        adir = AttemptDir.of(self.settings.scratch, event.run_id, event.step, event.attempt)
        mounted: list[ev.MountedInput] = []
        notes: list[str] = []
        try:
            opened: dict[str, ObjectStore] = {}  # a dataset's paths often share one
            for inp in event.inputs:
                if inp.datastore not in opened:
                    opened[inp.datastore] = await open_named(self.delivery.pool, inp.datastore)
                datastore = opened[inp.datastore]
                binding, note = await bind_input(
                    datastore,
                    inp,
                    adir.inputs / inp.name,
                    cache=self.cache,
                    mounter=self.mounter,
                    mounts=mount_root(adir),
                    lifetime_seconds=event.dispatch.timeout_seconds,
                )
                mounted.append(binding)
                if note:
                    notes.append(note)
        except (PermanentError, OSError) as exc:
            _log.warning("data_mounter.failed", reason=str(exc))
            # Mounts made for the inputs bound so far would outlive the attempt: no step runs
            # to unmount them.
            await _undo_mounts(adir)
            async with self.delivery.transaction(decoded) as tx:
                tx.emit(
                    ev.DataMountFailed(
                        run_id=event.run_id, step=event.step, attempt=event.attempt, reason=str(exc)
                    )
                )
            return
        except BaseException:
            # A transient failure (the handler is retried) or a stop: the retry mounts again.
            await asyncio.shield(_undo_mounts(adir))
            raise
        if notes:
            adir.root.mkdir(parents=True, exist_ok=True)
            with adir.mount_log.open("a") as f:
                f.writelines(n + "\n" for n in notes)
        async with self.delivery.transaction(decoded) as tx:
            tx.emit(
                ev.DataMounted(
                    run_id=event.run_id,
                    step=event.step,
                    attempt=event.attempt,
                    inputs=mounted,
                    notes=notes,
                ),
                event.dispatch.model_copy(update={"inputs": mounted}),
            )
