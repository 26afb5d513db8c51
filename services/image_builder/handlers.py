"""Resolve environments for steps: the default one, or a definition built once per content.

A definition (pip requirements + variables) is locked with hashes by uv, named by the digest
of that lock (plus Python, variables and platform), installed into a ``--target`` tree and
stored as a tar in the workspace's default datastore, where runners fetch it without ever
touching the package index. Builds of one definition are serialised across every image
builder by a PostgreSQL advisory lock, and whoever gets the lock second finds the result
recorded and builds nothing. A failed build records nothing reusable: the next request tries
again, and the run that asked fails with uv's explanation.
"""

from __future__ import annotations

import asyncio
import platform
import shutil
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from importlib import metadata
from pathlib import Path

import structlog

from contracts import events as ev
from contracts.envelope import DecodedEvent
from contracts.environment import EnvironmentDefinition
from contracts.snapshot import digest_bytes
from contracts.spec import DEFAULT_ENVIRONMENT
from services.image_builder import store
from services.image_builder.build import (
    BuildFailed,
    EnvironmentArtifacts,
    build,
    containerfile,
    environment_digest,
    lock,
    pack,
)
from services.image_builder.settings import ImageBuilderSettings
from services.runtime.outbox import Delivery
from services.runtime.storage import default_datastore, open_datastore

__all__ = ["DEFAULT_ENVIRONMENT", "ImageBuilderHandlers", "default_environment_digest"]

_log = structlog.get_logger("headrace.image_builder")


def default_environment_digest() -> tuple[str, str]:
    """(digest, python version) of the default environment."""
    python = platform.python_version()
    try:
        version = metadata.version("headrace")
    except metadata.PackageNotFoundError:
        version = "0"
    return digest_bytes(f"python={python};headrace={version}".encode()), python


class ImageBuilderHandlers:
    def __init__(self, settings: ImageBuilderSettings, delivery: Delivery, instance: str) -> None:
        self.settings = settings
        self.delivery = delivery
        self.instance = instance
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def on_environment_requested(
        self, event: ev.EnvironmentRequested, decoded: DecodedEvent
    ) -> None:
        if event.environment == DEFAULT_ENVIRONMENT:
            digest, python = default_environment_digest()
            await self._ready(event, decoded, digest, python, None)
            return
        defn = event.definition
        if defn is None or defn.key != event.environment:
            await self._failed(
                event,
                decoded,
                f"environment {event.environment!r} came without its definition (or with one "
                "whose content does not match the key); resubmit the pipeline with the SDK",
            )
            return
        try:
            digest, python = await self._build_once(defn)
        except BuildFailed as exc:
            await self._failed(event, decoded, str(exc))
            return
        await self._ready(event, decoded, digest, python, defn)

    async def _ready(
        self,
        event: ev.EnvironmentRequested,
        decoded: DecodedEvent,
        digest: str,
        python: str,
        defn: EnvironmentDefinition | None,
    ) -> None:
        async with self.delivery.transaction(decoded) as tx:
            definition = defn.model_dump(mode="json") if defn is not None else None
            await store.record(
                tx.conn, event.environment, "ready", digest, python, None, definition
            )
            tx.emit(
                ev.EnvironmentReady(
                    run_id=event.run_id, environment=event.environment, digest=digest, python=python
                )
            )

    async def _failed(
        self, event: ev.EnvironmentRequested, decoded: DecodedEvent, reason: str
    ) -> None:
        async with self.delivery.transaction(decoded) as tx:
            tx.emit(
                ev.EnvironmentFailed(
                    run_id=event.run_id, environment=event.environment, reason=reason
                )
            )

    async def _build_once(self, defn: EnvironmentDefinition) -> tuple[str, str]:
        """(digest, python) of ``defn``: recorded already, or built now under the lock."""
        key = defn.key
        if (ready := await store.ready_digest(self.delivery.pool, key)) is not None:
            return ready
        async with self._locks[key], self.delivery.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key)
            try:
                if (ready := await store.ready_digest(conn, key)) is not None:
                    _log.info("image_builder.built_elsewhere", environment=key)
                    return ready
                digest, python = await self._build(defn)
                await store.record(
                    conn, key, "ready", digest, python, None, defn.model_dump(mode="json")
                )
                return digest, python
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)

    async def _build(self, defn: EnvironmentDefinition) -> tuple[str, str]:
        """Lock, then build and publish unless an identical lock was built before."""
        s = self.settings
        python = platform.python_version()
        s.builds.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="build-", dir=s.builds))
        log = work / "build.log"
        started = time.monotonic()
        datastore = open_datastore(await default_datastore(self.delivery.pool))
        try:
            _log.info("image_builder.locking", environment=defn.key)
            locked = await lock(defn, python, work, s.uv_path, s.uv_cache)
            digest = environment_digest(
                locked.locked, python, defn.env_vars, sysconfig.get_platform()
            )
            if await EnvironmentArtifacts.exists(datastore, digest):
                _log.info("image_builder.artifact_exists", environment=defn.key, digest=digest)
                return digest, python
            _log.info("image_builder.building", environment=defn.key, digest=digest)
            # For this interpreter: its version is the one in the digest, and runners check it.
            python_path = Path(sys.executable)
            await build(locked.locked, work / "env", python_path, s.uv_path, s.uv_cache, log)
            await asyncio.to_thread(pack, work / "env", work / "env.tar")
            await EnvironmentArtifacts.publish(
                datastore,
                digest,
                work / "env.tar",
                locked.locked,
                log,
                containerfile(defn, digest),
            )
            seconds = time.monotonic() - started
            await store.record_build(
                self.delivery.pool,
                defn.key,
                digest,
                "succeeded",
                self.instance,
                seconds,
                EnvironmentArtifacts.log_key(digest),
                None,
            )
            _log.info("image_builder.built", environment=defn.key, digest=digest, seconds=seconds)
            return digest, python
        except BuildFailed as exc:
            log_key = f"environments/failed/{defn.key.rsplit(':', 1)[-1]}-{int(time.time())}.log"
            if log.exists():
                await datastore.put(log_key, log)
            else:
                await datastore.put(log_key, str(exc).encode())
            reason = f"{exc}\n(build log: datastore {datastore.name!r}, {log_key})"
            await store.record_build(
                self.delivery.pool,
                defn.key,
                None,
                "failed",
                self.instance,
                time.monotonic() - started,
                log_key,
                str(exc),
            )
            _log.warning("image_builder.build_failed", environment=defn.key, log=log_key)
            raise BuildFailed(reason) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
