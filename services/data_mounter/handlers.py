"""Bind each input of a step into its scratch area.

A ``DataReference`` or ``PipelineData`` in mount mode on a local datastore becomes a symbolic
link to the data (read-only by convention, no copy); download mode copies it. A datastore that
cannot be mounted falls back to copying and says so in the step's mount log, as the seed does.
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
from services.data_mounter import store
from services.data_mounter.errors import InputDataError
from services.runtime.errors import PermanentError
from services.runtime.outbox import Delivery
from services.runtime.scratch import AttemptDir
from services.runtime.settings import RuntimeSettings
from services.runtime.storage import ObjectStore, open_datastore

__all__ = ["DataMounterHandlers", "bind_input"]

_log = structlog.get_logger("headrace.data_mounter")


async def bind_input(
    datastore: ObjectStore, inp: ev.ResolvedInput, target: Path
) -> tuple[ev.MountedInput, str | None]:
    """Link or copy one input to ``target``; return the binding and an optional log note."""
    try:
        source = datastore.local_path(inp.path)
    except ValueError as exc:
        raise InputDataError(
            f"input {inp.name!r}: path {inp.path!r} escapes datastore {datastore.name!r}"
        ) from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        # Bound already (a redelivered request): never unbind under a step that may be
        # reading it. One attempt's inputs are fixed once bound.
        method: Literal["link", "copy"] = "link" if target.is_symlink() else "copy"
        return ev.MountedInput(name=inp.name, local_path=str(target), method=method), None
    if inp.pipeline_data and not await datastore.listing(inp.path):
        # The upstream step committed an empty output: bind an empty directory.
        target.mkdir(parents=True, exist_ok=True)
        return ev.MountedInput(name=inp.name, local_path=str(target), method="copy"), None
    if source is not None:
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
    objects = await datastore.listing(inp.path)
    if not objects:
        raise InputDataError(
            f"input {inp.name!r}: nothing at path {inp.path!r} on datastore {datastore.name!r}"
        )
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        await asyncio.to_thread(shutil.rmtree, tmp)
    for key, _size in objects:
        rel = key[len(inp.path) :].lstrip("/") or Path(key).name
        await datastore.download(key, tmp / rel)
    tmp.rename(target)  # complete or absent: a redelivery never sees a partial download
    note = None
    if inp.mode == "mount":
        note = f"input {inp.name!r}: datastore {datastore.name!r} cannot be mounted here; copied"
    return ev.MountedInput(name=inp.name, local_path=str(target), method="copy"), note


def _copy(source: Path, target: Path) -> None:
    """Copy next to ``target`` then rename, so a half-copied input is never visible."""
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    if source.is_dir():
        shutil.copytree(source, tmp)
    else:
        shutil.copyfile(source, tmp)
    tmp.rename(target)


class DataMounterHandlers:
    def __init__(self, settings: RuntimeSettings, delivery: Delivery) -> None:
        self.settings = settings
        self.delivery = delivery

    async def on_mount_requested(self, event: ev.DataMountRequested, decoded: DecodedEvent) -> None:
        if await self.delivery.seen(decoded) or await store.attempt_claimed(
            self.delivery.pool, event.run_id, event.step, event.attempt
        ):
            return  # a redelivered request for an attempt a runner already started
        adir = AttemptDir.of(self.settings.scratch, event.run_id, event.step, event.attempt)
        mounted: list[ev.MountedInput] = []
        notes: list[str] = []
        try:
            for inp in event.inputs:
                datastore = open_datastore(
                    await store.load_datastore(self.delivery.pool, inp.datastore)
                )
                binding, note = await bind_input(datastore, inp, adir.inputs / inp.name)
                mounted.append(binding)
                if note:
                    notes.append(note)
        except (PermanentError, OSError) as exc:
            _log.warning("data_mounter.failed", reason=str(exc))
            async with self.delivery.transaction(decoded) as tx:
                tx.emit(
                    ev.DataMountFailed(
                        run_id=event.run_id, step=event.step, attempt=event.attempt, reason=str(exc)
                    )
                )
            return
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
