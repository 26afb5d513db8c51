"""An in-process headrace (every service, real broker, real database) per test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from contracts.snapshot import ManifestEntry, SnapshotManifest, digest_bytes
from services.api.service import ApiService
from services.api.settings import ApiSettings
from services.artifact_uploader.service import ArtifactUploaderService
from services.artifact_uploader.settings import ArtifactUploaderSettings
from services.data_mounter.service import DataMounterService
from services.data_mounter.settings import DataMounterSettings
from services.image_builder.service import ImageBuilderService
from services.image_builder.settings import ImageBuilderSettings
from services.runtime.bootstrap import bootstrap_workspace
from services.runtime.service import Service
from services.runtime.settings import RuntimeSettings
from services.runtime.tokens import create_token
from services.scheduler.service import SchedulerService
from services.scheduler.settings import SchedulerSettings
from services.snapshotter.service import SnapshotterService
from services.snapshotter.settings import SnapshotterSettings
from services.step_runner.service import StepRunnerService
from services.step_runner.settings import StepRunnerSettings
from tests.helpers import eventually


@dataclass
class Stack:
    """Running services and an HTTP client bound to the API app."""

    settings: RuntimeSettings
    services: list[Service]
    api: ApiService
    client: httpx.AsyncClient
    snapshots: dict[str, str] = field(default_factory=dict)

    async def upload_snapshot(self, files: dict[str, str]) -> str:
        """Upload a source tree given as {path: text}; return its manifest digest."""
        entries = []
        for path, text in sorted(files.items()):
            data = text.encode()
            digest = digest_bytes(data)
            entries.append(ManifestEntry(path=path, digest=digest, size=len(data)))
            r = await self.client.put(f"/api/v1/blobs/{digest}", content=data)
            assert r.status_code == 201, r.text
        manifest = SnapshotManifest(files=entries)
        r = await self.client.put(
            f"/api/v1/blobs/{manifest.digest}", content=manifest.canonical_bytes()
        )
        assert r.status_code == 201, r.text
        return manifest.digest

    async def submit(self, pipeline: dict[str, Any], **kw: Any) -> httpx.Response:
        return await self.client.post(
            "/api/v1/runs", json={"experiment": "it", "pipeline": pipeline, **kw}
        )

    async def wait_run(self, run_id: str, timeout: float = 30) -> dict[str, Any]:
        """Poll until the run is terminal; return its detail."""
        detail: dict[str, Any] = {}

        async def terminal() -> bool:
            nonlocal detail
            detail = (await self.client.get(f"/api/v1/runs/{run_id}")).json()
            return detail["status"] in ("Completed", "Failed", "Canceled")

        await eventually(terminal, timeout=timeout)
        return detail


@contextlib.asynccontextmanager
async def running_stack(
    runtime_settings: RuntimeSettings, runners: int = 1
) -> AsyncIterator[Stack]:
    """Every service in this process against the settings' broker and database."""
    base = runtime_settings.model_dump()
    await bootstrap_workspace(runtime_settings)
    services: list[Service] = [
        SchedulerService(SchedulerSettings(**base)),
        SnapshotterService(SnapshotterSettings(**base)),
        ImageBuilderService(ImageBuilderSettings(**base)),
        DataMounterService(DataMounterSettings(**base)),
        *(
            StepRunnerService(StepRunnerSettings(**base, runner_id=f"runner-{i}"))
            for i in range(runners)
        ),
        ArtifactUploaderService(ArtifactUploaderSettings(**base)),
    ]
    api = ApiService(ApiSettings(**base))
    await asyncio.gather(*(s.start() for s in [*services, api]))
    conn = await asyncpg.connect(runtime_settings.database_url)
    try:
        token, _ = await create_token(conn, "tests", ["admin"])
    finally:
        await conn.close()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app),
        base_url="http://api",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        yield Stack(runtime_settings, services, api, client)
    finally:
        await client.aclose()
        await asyncio.gather(*(s.stop(grace=5) for s in [*services, api]))


@pytest.fixture
async def stack(runtime_settings: RuntimeSettings) -> AsyncIterator[Stack]:
    """Every service in this process, one runner, on a fresh database and topic prefix."""
    async with running_stack(runtime_settings) as s:
        yield s
