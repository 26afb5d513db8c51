"""Integrity of content-addressed data, against the real stack (API, database, services).

What matters: bytes stored under a digest are the bytes of that digest. Only the
digest-checked routes write the default datastore's blob and environment prefixes; a blob
whose stored bytes were changed behind the API's back counts as missing, so the SDK uploads it
again and the next run works; a manifest that lies about a file's size is refused before any
step runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from contracts.snapshot import ManifestEntry, SnapshotManifest, blob_key, digest_bytes
from contracts.spec import DEFAULT_DATASTORE
from tests.integration.conftest import Stack
from tests.integration.test_pipeline_runs import WRITE, chain

OBJECTS = f"/api/v1/datastores/{DEFAULT_DATASTORE}/objects"


def _default_root(stack: Stack) -> Path:
    return stack.settings.home / "datastores" / DEFAULT_DATASTORE


async def _put_blob(stack: Stack, data: bytes) -> str:
    digest = digest_bytes(data)
    r = await stack.client.put(f"/api/v1/blobs/{digest}", content=data)
    assert r.status_code == 201, r.text
    return digest


async def _missing(stack: Stack, digests: list[str]) -> list[str]:
    r = await stack.client.post("/api/v1/blobs/missing", json={"digests": digests})
    assert r.status_code == 200, r.text
    missing: list[str] = r.json()["missing"]
    return missing


@pytest.mark.parametrize(
    "key",
    [
        "blobs/sha256/ab/" + "ab" * 32,
        "./blobs/sha256/x",
        "blobs",
        "environments/" + "cd" * 32 + "/env.tar",
        "environments/" + "cd" * 32 + "/archive.json",
    ],
)
async def test_generic_object_route_refuses_content_addressed_prefixes(
    stack: Stack, key: str
) -> None:
    """PUT /datastores/<default>/objects/{blobs,environments}/... is refused with 403 naming the
    digest-checked route to use, and nothing is written (not even with overwrite)."""
    r = await stack.client.put(f"{OBJECTS}/{key}?overwrite=true", content=b"poison")
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert "digest" in detail
    assert "PUT /api/v1/blobs/{digest}" in detail or "image builder" in detail
    written = [p for p in _default_root(stack).rglob("*") if p.is_file()]
    assert written == []


async def test_generic_object_route_still_writes_other_keys(stack: Stack) -> None:
    """Keys outside the protected prefixes (also ones that only start with the same letters)
    are written as before: the refusal is by path component, not by string prefix."""
    for key in ("blobsy/x.txt", "data/blobs/x.txt", "environments-notes.txt"):
        r = await stack.client.put(f"{OBJECTS}/{key}", content=b"fine")
        assert r.status_code == 201, r.text
        assert (_default_root(stack) / key).read_bytes() == b"fine"


async def test_tampered_blob_counts_as_missing_until_uploaded_again(stack: Stack) -> None:
    """A blob whose stored bytes no longer hash to its digest is reported missing (a truncated
    one and a same-size one alike); after a fresh upload it is present again."""
    good = await _put_blob(stack, b"print('hello')\n")
    other = await _put_blob(stack, b"print('other')\n")
    assert await _missing(stack, [good, other]) == []  # verified and remembered
    path = _default_root(stack) / blob_key(good)
    path.write_bytes(b"print('HELLO')\n")  # same size, other bytes
    assert await _missing(stack, [good, other]) == [good]
    path.write_bytes(b"")  # truncated
    assert await _missing(stack, [good]) == [good]
    await _put_blob(stack, b"print('hello')\n")
    assert await _missing(stack, [good, other]) == []


async def test_sdk_reuploads_a_tampered_blob_and_the_run_completes(
    stack: Stack, tmp_path: Path
) -> None:
    """The SDK's upload asks which blobs are missing; a tampered one is, so it is sent again
    and a run on that snapshot completes instead of failing snapshot verification."""
    from headrace.snapshot import snapshot_directory, upload_snapshot
    from tests.integration.test_datastores_api import sdk_workspace

    src = tmp_path / "src"
    src.mkdir()
    (src / "write.py").write_text(WRITE)
    ws = sdk_workspace(stack)
    cache = tmp_path / "manifests"

    def upload() -> tuple[str, int]:
        snap = snapshot_directory(src)
        sent = upload_snapshot(ws.client, snap, show_progress=False, manifest_cache=cache)
        return snap.digest, sent

    digest, first = await asyncio.to_thread(upload)
    assert first > len(WRITE)
    blob = _default_root(stack) / blob_key(digest_bytes(WRITE.encode()))
    blob.write_bytes(b"import os; os.system('echo owned')\n")
    again_digest, sent = await asyncio.to_thread(upload)
    assert again_digest == digest
    assert sent == len(WRITE.encode())  # the tampered blob only; the manifest is intact
    assert blob.read_bytes() == WRITE.encode()
    r = await stack.submit({"steps": chain(digest, 1)["steps"]})
    assert r.status_code == 201, r.text
    assert (await stack.wait_run(r.json()["run_id"]))["status"] == "Completed"


async def test_manifest_size_that_does_not_match_the_blob_fails_the_run(stack: Stack) -> None:
    """A manifest entry whose size differs from its blob's bytes is refused by the snapshotter
    (the run fails naming the file and both sizes) before any step runs."""
    data = WRITE.encode()
    digest = await _put_blob(stack, data)
    manifest = SnapshotManifest(
        files=[ManifestEntry(path="write.py", digest=digest, size=len(data) + 1000)]
    )
    await _put_blob(stack, manifest.canonical_bytes())
    r = await stack.submit(chain(manifest.digest, 1))
    assert r.status_code == 201, r.text
    run = await stack.wait_run(r.json()["run_id"])
    assert run["status"] == "Failed"
    assert "write.py" in run["error"]
    assert f"{len(data) + 1000}" in run["error"]
    assert f"{len(data)} bytes" in run["error"]
