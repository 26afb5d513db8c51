"""The node's data cache (content identity, one download, read-only entries, LRU eviction that
spares linked entries) and the rclone mounter's handling of credentials."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from services.data_mounter import fuse
from services.data_mounter.cache import DataCache, cache_key, identity_document
from services.data_mounter.fuse import FuseMounter, MountError
from services.runtime.storage import DatastoreRecord, ObjectStore, open_datastore

SECRET = "s3cr3t-" + "x" * 32
S3 = DatastoreRecord(
    name="raw",
    kind="s3",
    config={
        "bucket": "data",
        "endpoint": "http://127.0.0.1:8333",
        "region": "us-east-1",
        "access_key_id": "AKIDEXAMPLE",
        "secret_access_key": SECRET,
        "prefix": "team/",
    },
)


def test_cache_key_has_no_credential_and_follows_content_identity() -> None:
    """The cache key holds no credential; a new ETag, size, object or bucket changes it, rotated
    credentials do not."""
    doc = identity_document(S3, "in/a.csv", 10, "etag-1")
    assert SECRET not in repr(doc)
    assert "AKIDEXAMPLE" not in repr(doc)
    assert doc["where"] == {"endpoint": "http://127.0.0.1:8333", "bucket": "data", "prefix": "team"}
    key = cache_key(S3, "in/a.csv", 10, "etag-1")
    assert SECRET not in key
    # A new version of the object (new ETag, or new size) is a new entry ...
    assert cache_key(S3, "in/a.csv", 10, "etag-2") != key
    assert cache_key(S3, "in/a.csv", 11, "etag-1") != key
    # ... as is another object or another bucket; rotated credentials are not.
    assert cache_key(S3, "in/b.csv", 10, "etag-1") != key
    other_bucket = S3.model_copy(update={"config": {**S3.config, "bucket": "other"}})
    assert cache_key(other_bucket, "in/a.csv", 10, "etag-1") != key
    rotated = S3.model_copy(
        update={"config": {**S3.config, "access_key_id": "NEW", "secret_access_key": "new" * 8}}
    )
    assert cache_key(rotated, "in/a.csv", 10, "etag-1") == key


def _local_store(tmp_path: Path) -> ObjectStore:
    return open_datastore(
        DatastoreRecord(name="ds", kind="local", config={"root": str(tmp_path / "ds")})
    )


async def _put(store: ObjectStore, key: str, data: bytes) -> tuple[int, str]:
    await store.put(key, data)
    (_, size, etag) = (await store.identity(key))[0]
    return size, etag


async def test_concurrent_binds_download_once_into_a_read_only_entry(tmp_path: Path) -> None:
    """Five concurrent binds download once and hard-link one read-only entry; a changed object is
    a new entry, downloaded again."""
    store = _local_store(tmp_path)
    size, etag = await _put(store, "d/a.bin", b"a" * 1000)
    cache = DataCache(tmp_path / "cache", 10**9)
    targets = [tmp_path / "scratch" / str(i) / "a.bin" for i in range(5)]
    await asyncio.gather(*(cache.bind(store, "d/a.bin", size, etag, t) for t in targets))
    assert cache.downloads == 1
    assert cache.hits == 4
    entry = cache.path(cache_key(store.record, "d/a.bin", size, etag))
    assert {os.stat(t).st_ino for t in targets} == {os.stat(entry).st_ino}
    assert os.stat(entry).st_nlink == 6
    assert os.stat(entry).st_mode & 0o777 == 0o444
    # A changed object is a new entry, downloaded again.
    size2, etag2 = await _put(store, "d/a.bin", b"b" * 1000)
    assert etag2 != etag
    await cache.bind(store, "d/a.bin", size2, etag2, tmp_path / "scratch" / "new")
    assert cache.downloads == 2
    assert (tmp_path / "scratch" / "new").read_bytes() == b"b" * 1000


async def test_eviction_is_lru_and_spares_linked_entries(tmp_path: Path) -> None:
    """Eviction removes least recently used entries first but never one a step still links."""
    store = _local_store(tmp_path)
    cache = DataCache(tmp_path / "cache", 10**9)
    entries = {}
    for name in ("old", "mid", "linked"):
        size, etag = await _put(store, name, name.encode() * 100)
        target = tmp_path / "scratch" / name
        await cache.bind(store, name, size, etag, target)
        entries[name] = cache.path(cache_key(store.record, name, size, etag))
        if name != "linked":
            target.unlink()  # the step ended and its scratch was removed
    # "linked" is the least recently used, but a step still holds it.
    for age, name in ((300, "linked"), (200, "old"), (100, "mid")):
        then = os.stat(entries[name]).st_atime - age
        os.utime(entries[name], (then, then))
    cache.budget_bytes = 1000  # 300 + 300 + 600 bytes cached
    freed = cache.evict()
    assert freed == 300
    assert not entries["old"].exists()
    assert entries["mid"].exists()
    assert entries["linked"].exists()
    cache.budget_bytes = 0
    cache.evict()
    assert not entries["mid"].exists()
    assert entries["linked"].exists()  # never under a running step


async def test_rclone_gets_secrets_only_in_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credential in rclone's argv (visible to every user in ps) nor in the error built
    from its log, even when rclone's log quotes it."""
    seen: dict[str, Any] = {}

    class FailedRclone:
        returncode = 1

        async def wait(self) -> int:
            return 1

    async def fake_exec(*argv: str, env: dict[str, str], **_: Any) -> FailedRclone:
        seen["argv"], seen["env"] = list(argv), env
        log = Path(argv[argv.index("--log-file") + 1])
        log.write_text(f"CRITICAL: auth failed for key {SECRET} at http://x/?sig=abc&se=1\n")
        return FailedRclone()

    monkeypatch.setattr("services.data_mounter.fuse.asyncio.create_subprocess_exec", fake_exec)
    monkeypatch.setattr(fuse, "is_fuse_mount", lambda _p: False)

    async def no_unmount(_point: Path) -> None:
        return None

    monkeypatch.setattr(fuse, "unmount", no_unmount)
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("HEADRACE_DATABASE_URL", "postgresql://user:pw@db/headrace")
    mounter = FuseMounter(tmp_path / "logs", fuse.MountOptions(timeout_seconds=1))
    monkeypatch.setattr(mounter, "machine_reason", lambda: None)
    assert mounter.unsupported(S3) is None
    with pytest.raises(MountError) as err:
        await mounter.mount(S3, "in", tmp_path / "mnt", probe="a.csv", lifetime_seconds=60)
    assert SECRET not in " ".join(seen["argv"])
    assert "headrace:data/team/in" in seen["argv"]
    assert "--read-only" in seen["argv"]
    env = seen["env"]
    assert env["RCLONE_CONFIG_HEADRACE_SECRET_ACCESS_KEY"] == SECRET
    assert env["RCLONE_CONFIG_HEADRACE_FORCE_PATH_STYLE"] == "true"
    assert "AWS_CA_BUNDLE" not in env
    assert "HEADRACE_DATABASE_URL" not in env
    assert SECRET not in str(err.value)
    assert "sig=abc" not in str(err.value)
    assert "auth failed" in str(err.value)


def test_unsupported_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mounting says why it is unsupported: no rclone, a gcs datastore, Azure with no key or SAS."""
    mounter = FuseMounter(tmp_path)
    monkeypatch.setattr("services.data_mounter.fuse.shutil.which", lambda _name: None)
    assert mounter.unsupported(S3) == "rclone is not installed"
    ok = FuseMounter(tmp_path)
    monkeypatch.setattr(ok, "machine_reason", lambda: None)
    gcs = DatastoreRecord(name="g", kind="gcs", config={"bucket": "abc"})
    assert ok.unsupported(gcs) == "rclone mounts of gcs datastores are not supported"
    anonymous = DatastoreRecord(
        name="a", kind="azure_blob", config={"account_name": "a", "container": "abc"}
    )
    assert "account key or a SAS token" in (ok.unsupported(anonymous) or "")
