"""The API's snapshot-manifest cache stays bounded however many snapshots it is asked for."""

from __future__ import annotations

from typing import Any

import pytest

from contracts.snapshot import SnapshotManifest
from services.api import handlers
from services.api.settings import ApiSettings


async def test_manifest_cache_is_bounded_and_serves_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thousand distinct digests keep at most ``manifest_cache_size`` manifests in memory,
    and a digest asked for twice in a row is loaded once."""
    loads: list[str] = []

    async def load(_store: Any, digest: str) -> SnapshotManifest:
        loads.append(digest)
        return SnapshotManifest(files=[])

    async def store(_self: Any) -> object:
        return object()

    monkeypatch.setattr(handlers, "load_manifest", load)
    monkeypatch.setattr(handlers.ApiContext, "default_store", store)
    ctx = handlers.ApiContext(ApiSettings(manifest_cache_size=16), delivery=None)  # type: ignore[arg-type]
    for i in range(1000):
        await ctx.manifest(f"sha256:{i:064x}")
    assert len(ctx._manifests) <= 16
    await ctx.manifest("sha256:" + "f" * 64)
    await ctx.manifest("sha256:" + "f" * 64)
    assert loads.count("sha256:" + "f" * 64) == 1
