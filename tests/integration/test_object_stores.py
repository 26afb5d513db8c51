"""The datastore layer against real servers: a directory, SeaweedFS (S3), Azurite (Azure Blob).

One behaviour, every kind: the same test body runs on each, so a service written against the
local kind works unchanged on a cloud datastore. GCS runs config checks only (no emulator that
obstore can write to; see ``tests.servers``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from services.runtime.storage import (
    DatastoreError,
    DatastoreRecord,
    InvalidDatastore,
    InvalidKey,
    ObjectNotFound,
    ObjectStore,
    open_datastore,
    public_config,
    validate_config,
)
from tests.servers import (
    AzuriteServer,
    SeaweedServer,
    azurite,
    free_port,
    seaweedfs,
)

pytestmark = pytest.mark.xdist_group("objectstores")
# The servers' session fixtures, imported so that pytest finds them in this module.
SERVER_FIXTURES = (seaweedfs, azurite)

MB = 1024 * 1024
# GCS is not among them: no emulator here accepts obstore's GCS writes (see tests/servers.py);
# its configuration and construction are tested below.
KINDS = ["local", "s3", "azure_blob"]


def _record(kind: str, config: dict[str, Any], name: str | None = None) -> DatastoreRecord:
    return DatastoreRecord(name=name or f"ds-{kind}", kind=kind, config=config)


def _open(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> ObjectStore:
    """A datastore of ``kind`` private to one test (its own prefix on the shared servers)."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    if kind == "local":
        return open_datastore(_record(kind, {"root": str(tmp_path / "local-ds")}))
    if kind == "s3":
        s3: SeaweedServer = request.getfixturevalue("seaweedfs")
        return open_datastore(_record(kind, s3.datastore_config(prefix)))
    if kind == "azure_blob":
        az: AzuriteServer = request.getfixturevalue("azurite")
        return open_datastore(_record(kind, az.datastore_config(prefix)))
    raise AssertionError(f"no server for kind {kind!r}")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return _open(request, str(request.param), tmp_path)


async def test_put_get_exists_listing(store: ObjectStore) -> None:
    """Put, get, exists and listing (with or without a trailing slash) agree on every kind;
    only the local kind has a local path."""
    await store.put("a/one.txt", b"one")
    await store.put("a/sub/two.txt", b"two!")
    await store.put("b.txt", b"b")
    assert await store.get("a/one.txt") == b"one"
    assert await store.exists("a/one.txt")
    assert not await store.exists("a/missing.txt")
    assert await store.listing("a") == [("a/one.txt", 3), ("a/sub/two.txt", 4)]
    assert await store.listing("a/") == [("a/one.txt", 3), ("a/sub/two.txt", 4)]
    assert [p for p, _ in await store.listing("")] == ["a/one.txt", "a/sub/two.txt", "b.txt"]
    meta = await store.list_meta("a/sub")
    assert meta[0][:2] == ("a/sub/two.txt", 4)
    assert meta[0][2]
    if store.kind == "local":
        assert store.local_path("a/one.txt") is not None
    else:
        assert store.local_path("a/one.txt") is None


async def test_identity_changes_with_content(store: ObjectStore) -> None:
    """An object's identity (size, ETag) changes with its content; HEAD and LIST agree on it."""
    await store.put("d/x.bin", b"first")
    before = await store.identity("d/x.bin")
    assert before[0][:2] == ("d/x.bin", 5)
    # HEAD (one object) and LIST (a prefix) give the same ETag for the same object.
    assert await store.identity("d") == before
    await store.put("d/x.bin", b"second")
    after = await store.identity("d/x.bin")
    assert after[0][1] == 6
    assert after[0][2] != before[0][2]


async def test_streaming_download_of_a_large_object(store: ObjectStore, tmp_path: Path) -> None:
    """A 40 MB object downloads intact in chunks (peak memory under 25 MB), no .part left."""
    data = os.urandom(40 * MB)
    digest = hashlib.sha256(data).hexdigest()
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    del data
    assert await store.upload_file(src, "big/blob.bin") == 40 * MB
    dest = tmp_path / "out" / "blob.bin"
    tracemalloc.start()
    try:
        size = await store.download("big/blob.bin", dest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == 40 * MB
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    # Chunks, not the whole object, were held in Python at once.
    assert peak < 25 * MB, peak
    assert not list(dest.parent.glob("*.part"))


async def test_key_escaping_the_root_is_rejected(store: ObjectStore, tmp_path: Path) -> None:
    """A key escaping the root is refused by put, get, download and copy; nothing is written."""
    for bad in ("../x", "a/../../x", "/etc/passwd"):
        with pytest.raises(InvalidKey, match="must"):
            await store.put(bad, b"x")
        with pytest.raises(ValueError, match="must"):
            await store.get(bad)
        with pytest.raises(InvalidKey):
            await store.download(bad, tmp_path / "never" / "written")
        assert not (tmp_path / "never").exists()
        with pytest.raises(InvalidKey):
            await store.copy_to(store, "ok", bad)


async def test_missing_object_names_datastore_and_key(store: ObjectStore, tmp_path: Path) -> None:
    """A missing object raises ObjectNotFound (a FileNotFoundError) naming datastore and key."""
    with pytest.raises(ObjectNotFound) as info:
        await store.get("nope/missing.bin")
    assert store.name in str(info.value)
    assert "nope/missing.bin" in str(info.value)
    assert "check the key" in str(info.value)
    # Still a FileNotFoundError: callers written against the local kind keep working.
    with pytest.raises(FileNotFoundError):
        await store.download("nope/missing.bin", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(ObjectNotFound):
        await store.copy_to(store, "nope", "elsewhere")


async def _objects(store: ObjectStore) -> AsyncIterator[tuple[str, bytes]]:
    for key in sorted(p for p, _ in await store.listing("")):
        yield key, await store.get(key)


async def test_copy_s3_to_azure_and_azure_to_local(
    seaweedfs: SeaweedServer, azurite: AzuriteServer, tmp_path: Path
) -> None:
    """Copying a prefix S3 to Azure (multipart included) and an object Azure to local keeps the
    bytes and copies only what is under the source."""
    prefix = uuid.uuid4().hex[:8]
    s3 = open_datastore(_record("s3", seaweedfs.datastore_config(f"s-{prefix}")))
    az = open_datastore(_record("azure_blob", azurite.datastore_config(f"a-{prefix}")))
    local = open_datastore(_record("local", {"root": str(tmp_path / "ds")}))
    big = os.urandom(12 * MB)  # over the 5 MB multipart threshold
    await s3.put("run/out/model.bin", big)
    await s3.put("run/out/metrics.json", b'{"auc": 0.9}')
    await s3.put("run/out/deep/log.txt", b"log")
    await s3.put("run/other.txt", b"not copied")

    written = await s3.copy_to(az, "run/out", "copied")
    assert sorted(written) == ["copied/deep/log.txt", "copied/metrics.json", "copied/model.bin"]
    assert [k async for k, _ in _objects(az)] == sorted(written)
    assert await az.get("copied/model.bin") == big
    assert await az.get("copied/metrics.json") == b'{"auc": 0.9}'

    assert await az.copy_to(local, "copied/model.bin", "in/model.bin") == ["in/model.bin"]
    path = local.local_path("in/model.bin")
    assert path is not None
    assert path.read_bytes() == big


async def test_wrong_credentials_never_echo_the_secret(
    seaweedfs: SeaweedServer, azurite: AzuriteServer
) -> None:
    """Wrong S3 or Azure credentials fail naming the datastore and credentials; the secret is in
    no message, repr or chained exception."""
    s3_secret = "WRONG-s3-secret-" + uuid.uuid4().hex
    s3 = open_datastore(
        _record("s3", {**seaweedfs.datastore_config(), "secret_access_key": s3_secret}, "bad-s3")
    )
    az_key = base64.b64encode(os.urandom(64)).decode()
    az = open_datastore(
        _record("azure_blob", {**azurite.datastore_config(), "account_key": az_key}, "bad-az")
    )
    for store, secret in ((s3, s3_secret), (az, az_key)):
        for op in (store.get("k/obj.bin"), store.put("k/obj.bin", b"x"), store.listing("k")):
            with pytest.raises(DatastoreError) as info:
                await op
            msg = str(info.value)
            assert store.name in msg, msg
            assert "credentials" in msg, msg
            assert secret not in msg
            assert secret not in repr(info.value)
            # obstore's own exception (request details) is not chained either.
            assert info.value.__cause__ is None
            assert info.value.__suppress_context__
        assert secret not in repr(store)


async def test_unreachable_endpoint_says_what_to_check() -> None:
    """An unreachable endpoint fails naming the key and saying to check the endpoint, no secret."""
    port = free_port()
    store = open_datastore(
        _record(
            "s3",
            {
                "bucket": "bkt",
                "endpoint": f"http://127.0.0.1:{port}",
                "access_key_id": "id",
                "secret_access_key": "unreachable-secret",
            },
        )
    )
    with pytest.raises(DatastoreError, match=r"unreachable.*check the datastore's endpoint") as e:
        await store.get("some/key")
    assert "some/key" in str(e.value)
    assert "unreachable-secret" not in str(e.value)


async def test_missing_bucket_reports_it(seaweedfs: SeaweedServer) -> None:
    """Listing a bucket that does not exist fails saying the bucket/container does not exist."""
    cfg = {**seaweedfs.datastore_config(), "bucket": "no-such-bucket"}
    store = open_datastore(_record("s3", cfg))
    with pytest.raises(DatastoreError, match="bucket/container does not exist"):
        await store.listing("x")


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("s3", {"endpoint": "http://127.0.0.1:1"}, "bucket"),
        ("s3", {"bucket": "bkt", "access_key_id": "AKIA"}, "secret_access_key"),
        ("s3", {"bucket": "bkt", "secret_access_key": "s3cr3t-value"}, "access_key_id"),
        ("s3", {"bucket": "bkt", "endpoint": "http://u:s3cr3t-value@host"}, "endpoint"),
        ("s3", {"bucket": "bkt", "secret_key": "s3cr3t-value"}, "secret_key"),
        ("azure_blob", {"account_name": "acc"}, "container"),
        (
            "azure_blob",
            {"account_name": "a", "container": "ctr", "endpoint": "ftp://x"},
            "endpoint",
        ),
        (
            "azure_blob",
            {"account_name": "a", "container": "ctr", "account_key": "s3cr3t-value"},
            "account_key",
        ),
        ("gcs", {"bucket": "bkt", "service_account_key": "s3cr3t-value"}, "service_account_key"),
        ("local", {}, "root"),
        ("ftp", {}, "kind"),
    ],
)
def test_invalid_config_names_the_field(kind: str, config: dict[str, Any], field: str) -> None:
    """An invalid config or kind is refused naming the field, never echoing a secret."""
    with pytest.raises(InvalidDatastore) as info:
        validate_config(kind, config)
    assert f"'{field}'" in str(info.value)
    assert "s3cr3t-value" not in str(info.value)
    if kind in ("s3", "azure_blob", "gcs", "local"):
        with pytest.raises(InvalidDatastore):
            open_datastore(_record(kind, config))


def test_public_config_hides_every_secret() -> None:
    """The public config masks every secret of every kind as *** and keeps the rest."""
    sa = json.dumps({"private_key": "-----BEGIN PRIVATE KEY-----gcs-secret", "client_email": "x"})
    configs = {
        "s3": {
            "bucket": "bkt",
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": "s3-secret",
            "session_token": "s3-token",
        },
        "azure_blob": {"account_name": "acc", "container": "ctr", "account_key": "YXotc2VjcmV0"},
        "gcs": {"bucket": "bkt", "service_account_key": sa},
    }
    sas = {"account_name": "acc", "container": "ctr", "sas_token": "sv=2022&sig=az-sas-secret"}
    for kind, cfg in [*configs.items(), ("azure_blob", sas)]:
        stored = validate_config(kind, cfg)
        shown = public_config(_record(kind, stored))
        text = json.dumps(shown)
        for secret in ("s3-secret", "s3-token", "YXotc2VjcmV0", "gcs-secret", "az-sas-secret"):
            assert secret not in text
        assert "***" in text
        assert shown.get("bucket", shown.get("container")) in ("bkt", "ctr")
    assert public_config(_record("s3", validate_config("s3", configs["s3"])))["access_key_id"] == (
        "AKIAEXAMPLE"
    )


def test_validate_config_normalises_and_keeps_secrets_for_storage() -> None:
    """Validation trims, fills defaults (region, prefix) and keeps the secrets for storage."""
    out = validate_config(
        "s3", {"bucket": " bkt ", "access_key_id": "id", "secret_access_key": "sec"}
    )
    assert out == {
        "bucket": "bkt",
        "region": "us-east-1",
        "access_key_id": "id",
        "secret_access_key": "sec",
        "prefix": "",
    }


def test_gcs_kind_opens_without_network() -> None:
    """The gcs kind is built (service account for an emulator, or anonymous); no GCS server is
    available to exercise its I/O here."""
    sa = json.dumps(
        {
            "gcs_base_url": "http://127.0.0.1:4443",
            "disable_oauth": True,
            "client_email": "",
            "private_key": "",
            "private_key_id": "",
        }
    )
    store = open_datastore(_record("gcs", {"bucket": "bkt", "service_account_key": sa}))
    assert store.kind == "gcs"
    assert store.local_path("x") is None
    anon = open_datastore(_record("gcs", {"bucket": "bkt", "skip_signature": True}))
    assert "gcs bucket 'bkt'" in repr(anon)
