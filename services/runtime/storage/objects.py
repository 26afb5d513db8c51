"""``ObjectStore``: one API over every kind of datastore (obstore), keys checked first."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import asyncpg
import obstore
from obstore.exceptions import (
    BaseError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import AzureStore, GCSStore, LocalStore, S3Store
from pydantic import SecretStr

from contracts.snapshot import digest_file, safe_relative_path

if TYPE_CHECKING:
    from obstore import ObjectMeta
from services.runtime.storage.config import (
    REDACTED,
    SECRET_FIELDS,
    AzureBlobConfig,
    DatastoreKind,
    GCSConfig,
    LocalConfig,
    S3Config,
    _Config,
    _model,
)
from services.runtime.storage.errors import (
    DatastoreError,
    InvalidDatastore,
    InvalidKey,
    ObjectNotFound,
)
from services.runtime.storage.records import (
    DatastoreRecord,
    load_datastore,
)

#: Chunk size of streaming reads: big enough for throughput, small enough that a download of
#: any size holds only a few of them in memory.
STREAM_CHUNK = 8 * 1024 * 1024

# A dead endpoint should fail in seconds, not after obstore's default 10 retries over 180 s:
# a step waiting on its input is better told early that the datastore is unreachable.
_RETRY: dict[str, Any] = {
    "max_retries": 4,
    "retry_timeout": timedelta(seconds=30),
    "backoff": {
        "init_backoff": timedelta(milliseconds=100),
        "max_backoff": timedelta(seconds=5),
        "base": 2,
    },
}
_CONNECT_TIMEOUT = "10s"


def _secret(v: SecretStr | None) -> str | None:
    return None if v is None else v.get_secret_value()


def _client_options(endpoint: str | None) -> dict[str, Any]:
    opts: dict[str, Any] = {"connect_timeout": _CONNECT_TIMEOUT}
    if endpoint is not None and endpoint.startswith("http://"):
        opts["allow_http"] = True
    return opts


def _prefix(p: str) -> str | None:
    return safe_relative_path(p.strip("/")) if p.strip("/") else None


def _build(cfg: _Config) -> tuple[Any, str]:
    """The obstore store for ``cfg`` and a description of where it points (no credentials)."""
    if isinstance(cfg, LocalConfig):
        root = Path(cfg.root)
        root.mkdir(parents=True, exist_ok=True)
        return LocalStore(str(root), mkdir=True), f"local directory {cfg.root}"
    if isinstance(cfg, S3Config):
        s3: dict[str, Any] = {"region": cfg.region}
        if cfg.endpoint:
            s3["endpoint"] = cfg.endpoint
        if cfg.access_key_id is not None:
            s3["access_key_id"] = cfg.access_key_id
            s3["secret_access_key"] = _secret(cfg.secret_access_key)
        if cfg.session_token is not None:
            s3["session_token"] = _secret(cfg.session_token)
        path_style = cfg.path_style if cfg.path_style is not None else bool(cfg.endpoint)
        s3["virtual_hosted_style_request"] = not path_style
        where = f"s3 bucket {cfg.bucket!r}" + (f" at {cfg.endpoint}" if cfg.endpoint else "")
        store = S3Store(
            cfg.bucket,
            prefix=_prefix(cfg.prefix),
            config=s3,  # type: ignore[arg-type]
            client_options=_client_options(cfg.endpoint),  # type: ignore[arg-type]
            retry_config=_RETRY,  # type: ignore[arg-type]
        )
        return store, where
    if isinstance(cfg, AzureBlobConfig):
        az: dict[str, Any] = {"account_name": cfg.account_name}
        if cfg.account_key is not None:
            az["account_key"] = _secret(cfg.account_key)
        if cfg.sas_token is not None:
            az["sas_key"] = _secret(cfg.sas_token)
        if cfg.endpoint:
            # obstore's use_emulator pins 127.0.0.1:10000; an explicit endpoint wins.
            az["endpoint"] = cfg.endpoint
        elif cfg.use_emulator:
            az["use_emulator"] = True
        endpoint = cfg.endpoint or ("http://127.0.0.1:10000" if cfg.use_emulator else None)
        where = f"azure container {cfg.container!r} of account {cfg.account_name!r}" + (
            f" at {endpoint}" if endpoint else ""
        )
        az_store = AzureStore(
            cfg.container,
            prefix=_prefix(cfg.prefix),
            config=az,  # type: ignore[arg-type]
            client_options=_client_options(endpoint),  # type: ignore[arg-type]
            retry_config=_RETRY,  # type: ignore[arg-type]
        )
        return az_store, where
    assert isinstance(cfg, GCSConfig)
    gcs: dict[str, Any] = {}
    if cfg.service_account_key is not None:
        gcs["service_account_key"] = _secret(cfg.service_account_key)
    if cfg.service_account_path is not None:
        gcs["service_account"] = cfg.service_account_path
    if cfg.base_url:
        gcs["base_url"] = cfg.base_url
    if cfg.skip_signature:
        gcs["skip_signature"] = True
    where = f"gcs bucket {cfg.bucket!r}" + (f" at {cfg.base_url}" if cfg.base_url else "")
    gcs_store = GCSStore(
        cfg.bucket,
        prefix=_prefix(cfg.prefix),
        config=gcs,  # type: ignore[arg-type]
        client_options=_client_options(cfg.base_url),  # type: ignore[arg-type]
        retry_config=_RETRY,  # type: ignore[arg-type]
    )
    return gcs_store, where


_CONNECTION_MARKERS = (
    "error sending request",
    "connection refused",
    "connect error",
    "tcp connect",
    "dns error",
    "timed out",
    "connection reset",
)


class ObjectStore:
    """One datastore opened for I/O."""

    def __init__(self, record: DatastoreRecord) -> None:
        self.record = record
        cfg = _model(record.kind, record.config)
        self.local_root: Path | None = Path(cfg.root) if isinstance(cfg, LocalConfig) else None
        try:
            self._store, self._where = _build(cfg)
        except BaseError as exc:
            # obstore refused the config while building its client (a malformed key, a bad
            # service account JSON): its text may quote the credential, so only its first
            # words travel.
            reason = ":".join(str(exc).split(":")[:2]).strip()
            raise InvalidDatastore(
                f"datastore {record.name!r}: its {record.kind} config was refused ({reason}); "
                "check the credential fields"
            ) from None
        self._secrets = [
            s for f in SECRET_FIELDS if isinstance(s := record.config.get(f), str) and len(s) >= 4
        ]

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def kind(self) -> DatastoreKind:
        return self.record.kind

    def __repr__(self) -> str:
        return f"ObjectStore({self.name!r}, {self._where})"

    # ---------------------------------------------------------------- errors

    def _key(self, key: str) -> str:
        try:
            return safe_relative_path(key)
        except ValueError as exc:
            raise InvalidKey(f"datastore {self.name!r}: {exc}") from None

    def _redact(self, text: str) -> str:
        """obstore's message, cut to its first line, without query strings (SAS tokens travel
        there) or any configured secret."""
        line = text.strip().splitlines()[0] if text.strip() else ""
        line = re.sub(r"(https?://[^\s?]*)\?\S*", r"\1?<query redacted>", line)
        # Keep "status code: 403 Forbidden", drop the response body that follows.
        line = re.sub(r"(status code: \d{3}[^:]*):.*", r"\1", line)
        for s in self._secrets:
            line = line.replace(s, REDACTED)
        return line[:300]

    def _fail(self, exc: BaseException, key: str, op: str) -> NoReturn:
        """Re-raise an obstore failure as a ``DatastoreError`` saying what to check.

        ``from None``: obstore's own exception text includes request details and is not
        guaranteed credential-free, so it must not travel on in ``__cause__``.
        """
        what = f"datastore {self.name!r} ({self._where}): cannot {op} {key!r}"
        cause = self._redact(str(exc))
        if isinstance(exc, FileNotFoundError):
            raise ObjectNotFound(
                f"{what}: no such object; check the key, and that it was written to this datastore"
            ) from None
        lowered = str(exc).lower()
        status = re.search(r"status code: (\d{3})", lowered)
        code = status.group(1) if status else ""
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError) or code in ("401", "403"):
            raise DatastoreError(
                f"{what}: access refused ({cause}); check the datastore's credentials and that "
                "they grant access to this bucket/container"
            ) from None
        if any(m in lowered for m in _CONNECTION_MARKERS):
            raise DatastoreError(
                f"{what}: the service is unreachable ({cause}); check the datastore's endpoint "
                "and that the service is running"
            ) from None
        if code == "404" or "nosuchbucket" in lowered or "containernotfound" in lowered:
            raise DatastoreError(
                f"{what}: the bucket/container does not exist ({cause}); check its name "
                "in the datastore's config"
            ) from None
        if isinstance(exc, IsADirectoryError):
            raise ObjectNotFound(f"{what}: it is a prefix, not an object") from None
        raise DatastoreError(f"{what}: {type(exc).__name__}: {cause}") from None

    @contextlib.contextmanager
    def _mapped(self, key: str, op: str) -> Iterator[None]:
        try:
            yield
        except DatastoreError:
            raise
        except (BaseError, OSError) as exc:
            self._fail(exc, key, op)

    # ---------------------------------------------------------------- I/O

    def local_path(self, key: str) -> Path | None:
        """The filesystem path of ``key`` when the datastore is a local directory; ``None``
        for remote kinds (callers then download)."""
        if self.local_root is None:
            return None
        return self.local_root / safe_relative_path(key) if key else self.local_root

    async def put(self, key: str, data: bytes | Path) -> None:
        """Write one object; a ``Path`` is streamed from disk, in parallel multipart uploads
        for large files, rather than read into memory."""
        k = self._key(key)
        with self._mapped(key, "write"):
            await obstore.put_async(self._store, k, data)

    async def upload_file(self, path: Path, key: str) -> int:
        """Upload the file ``path`` as ``key`` (multipart when large); return its size."""
        size = path.stat().st_size
        await self.put(key, path)
        return size

    async def get(self, key: str) -> bytes:
        """The whole object in memory: for small objects (manifests, metadata). Use
        ``download`` for anything that may be large."""
        k = self._key(key)
        with self._mapped(key, "read"):
            result = await obstore.get_async(self._store, k)
            return bytes(await result.bytes_async())

    async def exists(self, key: str) -> bool:
        k = self._key(key)
        with self._mapped(key, "check"):
            try:
                await obstore.head_async(self._store, k)
            except (FileNotFoundError, IsADirectoryError):
                return False
            return True

    async def _list(self, prefix: str) -> AsyncIterator[ObjectMeta]:
        p = self._key(prefix).rstrip("/") if prefix else ""
        with self._mapped(prefix or "/", "list"):
            async for batch in obstore.list(self._store, prefix=p or None):
                for meta in batch:
                    yield meta

    async def listing(self, prefix: str) -> list[tuple[str, int]]:
        """Every object under ``prefix`` (a directory-like prefix), with its size."""
        return sorted([(m["path"], m["size"]) async for m in self._list(prefix)])

    async def list_meta(self, prefix: str) -> list[tuple[str, int, str]]:
        """Every object under ``prefix`` with its size and ETag (its content identity)."""
        return sorted([(m["path"], m["size"], _etag(m)) async for m in self._list(prefix)])

    async def identity(self, key: str) -> list[tuple[str, int, str]]:
        """(name, size, ETag) of the object ``key``, or of every object under it: what a
        ``DataReference`` to ``key`` holds, so that a change anywhere below it is visible."""
        k = self._key(key)
        try:
            meta = await obstore.head_async(self._store, k)
        except (FileNotFoundError, IsADirectoryError, ValueError):
            return await self.list_meta(key)
        except (BaseError, OSError) as exc:
            self._fail(exc, key, "inspect")
        return [(meta["path"], meta["size"], _etag(meta))]

    async def content_digest(self, key: str) -> tuple[str, int]:
        """``(digest, size)`` of the object's bytes as stored, read in chunks.

        Why: a content-addressed key is only a claim about its bytes; whoever relies on it
        (blob existence checks, snapshot verification) checks the claim with this.
        """
        local = self.local_path(self._key(key))
        if local is not None:
            try:
                return await asyncio.to_thread(digest_file, local)
            except OSError as exc:
                self._fail(exc, key, "read")
        h = hashlib.sha256()
        size = 0
        async for chunk in self._stream(key, "read"):
            h.update(chunk)
            size += len(chunk)
        return "sha256:" + h.hexdigest(), size

    async def _stream(self, key: str, op: str) -> AsyncIterator[bytes]:
        """The object's bytes in chunks of ``STREAM_CHUNK``, errors mapped."""
        k = self._key(key)
        with self._mapped(key, op):
            result = await obstore.get_async(self._store, k)
            async for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
                yield chunk

    async def download(self, key: str, dest: Path) -> int:
        """Copy one object to ``dest`` chunk by chunk; return its size.

        Streaming keeps memory flat whatever the object's size, and writing to a temporary
        sibling then renaming means ``dest`` never exists half-written (a crash leaves only a
        ``.part`` file, which a retry overwrites).
        """
        self._key(key)  # refuse a bad key before touching the filesystem
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        size = 0
        try:
            with tmp.open("wb") as f:
                async for chunk in self._stream(key, "download"):
                    f.write(chunk)
                    size += len(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return size

    async def copy_to(self, other: ObjectStore, src_key: str, dst_key: str) -> list[str]:
        """Copy ``src_key`` of this datastore to ``dst_key`` of ``other``, streaming.

        ``src_key`` may name one object, or a prefix whose every object is copied below
        ``dst_key`` with the same relative path. Bytes flow from one store to the other in
        chunks (multipart upload on the destination), so objects larger than memory copy too;
        the stores may be of different kinds. Returns the destination keys written.
        """
        src = self._key(src_key)
        dst = other._key(dst_key)
        if await self.exists(src):
            pairs = [(src, dst)]
        else:
            objects = await self.listing(src)
            if not objects:
                raise ObjectNotFound(
                    f"datastore {self.name!r} ({self._where}): cannot copy {src_key!r}: no "
                    "object or prefix of that name; check the key"
                )
            pairs = [(p, f"{dst}/{p[len(src) :].lstrip('/')}") for p, _ in objects]
        for s, d in pairs:
            with other._mapped(d, "write"):
                await obstore.put_async(other._store, d, self._stream(s, "copy"))
        return [d for _, d in pairs]


def _etag(meta: ObjectMeta) -> str:
    """The ETag without the quotes some services add on HEAD but not on LIST, so one object
    has one identity whichever way it was looked up."""
    return str(meta.get("e_tag") or "").strip('"')


def open_datastore(record: DatastoreRecord) -> ObjectStore:
    """Open a datastore for I/O (one place to add kinds); ``InvalidDatastore`` if its config
    is unusable."""
    return ObjectStore(record)


async def open_named(conn: asyncpg.Pool | asyncpg.Connection, name: str) -> ObjectStore:
    """The datastore called ``name``, opened (``UnknownDatastore`` naming the known ones)."""
    return open_datastore(await load_datastore(conn, name))
