"""Datastores: named object stores behind one API (obstore).

Every kind (a local directory, S3 or an S3-compatible server, Azure Blob, Google Cloud Storage)
is opened as an obstore store, and services use only ``ObjectStore``: they never learn which
kind they talk to. Keys are checked to stay inside their datastore before any I/O, whatever the
kind, because keys come from clients.

Credentials live in the datastore's ``config`` in PostgreSQL and nowhere else: ``public_config``
is what may be shown, and every error raised here is built from the datastore's name, the key
and a redacted summary of the cause, so a credential never reaches a log, an event or a client.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import asyncpg
import obstore
from obstore.exceptions import (
    BaseError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from obstore.store import AzureStore, GCSStore, LocalStore, S3Store
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from contracts.snapshot import digest_file, safe_relative_path
from services.runtime.errors import PermanentError

if TYPE_CHECKING:
    from obstore import ObjectMeta

__all__ = [
    "AzureBlobConfig",
    "DatastoreError",
    "DatastoreKind",
    "DatastoreRecord",
    "GCSConfig",
    "InvalidDatastore",
    "InvalidKey",
    "LocalConfig",
    "ObjectNotFound",
    "ObjectStore",
    "S3Config",
    "UnknownDatastore",
    "check_local_root",
    "default_datastore",
    "list_datastores",
    "load_datastore",
    "open_datastore",
    "open_named",
    "public_config",
    "validate_config",
]

DatastoreKind = Literal["local", "s3", "azure_blob", "gcs"]

#: What ``public_config`` shows instead of a credential.
REDACTED = "***"

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


class UnknownDatastore(PermanentError):
    """No datastore has this name."""


class InvalidDatastore(PermanentError):
    """A datastore's kind or config is not usable; the message names the field to fix."""


class DatastoreError(PermanentError):
    """An object-store operation failed (missing object, refused credentials, unreachable
    endpoint). The message names the datastore and the key and never holds a credential."""


class ObjectNotFound(DatastoreError, FileNotFoundError):
    """The object does not exist. Also a ``FileNotFoundError``, so callers written against the
    local kind (``except FileNotFoundError``) keep working for every kind."""


class InvalidKey(DatastoreError, ValueError):
    """The key escapes the datastore's root. Also a ``ValueError``, as ``safe_relative_path``
    raised before, so existing callers that map ``ValueError`` to a client error still do."""


# --------------------------------------------------------------------------- configs


class _Config(BaseModel):
    """Common rules: unknown fields are refused (a typo such as ``secret_key`` must not silently
    fall back to anonymous access) and values are stripped of surrounding blanks."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def _check_endpoint(value: str | None) -> str | None:
    """An endpoint is a plain http(s) URL: credentials in it would be echoed in every error."""
    if value is None:
        return None
    if not re.match(r"^https?://[^/?#@\s]+(/[^?#@\s]*)?$", value):
        raise ValueError(
            "must be an http:// or https:// URL without user info, query or fragment "
            "(put credentials in their own fields)"
        )
    return value.rstrip("/")


class LocalConfig(_Config):
    """A directory on the server's filesystem."""

    root: str = Field(min_length=1)


class S3Config(_Config):
    """An S3 bucket on AWS or on an S3-compatible server (SeaweedFS, MinIO, Ceph ...)."""

    bucket: str = Field(min_length=3, max_length=63)
    endpoint: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    #: Path-style requests (``endpoint/bucket/key``); ``None`` means "path style when an
    #: endpoint is given", which is what self-hosted servers expect.
    path_style: bool | None = None
    prefix: str = ""

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, v: str | None) -> str | None:
        return _check_endpoint(v)


class AzureBlobConfig(_Config):
    """A container of an Azure storage account (or of Azurite)."""

    account_name: str = Field(min_length=1)
    container: str = Field(min_length=3, max_length=63)
    account_key: SecretStr | None = None
    sas_token: SecretStr | None = None
    #: Blob service URL including the account for emulators, e.g.
    #: ``http://127.0.0.1:10000/devstoreaccount1``; default is the public Azure endpoint.
    endpoint: str | None = None
    #: Azurite on its default address with its well-known account.
    use_emulator: bool = False
    prefix: str = ""

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, v: str | None) -> str | None:
        return _check_endpoint(v)

    @field_validator("account_key")
    @classmethod
    def _base64(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            try:
                base64.b64decode(v.get_secret_value(), validate=True)
            except ValueError:
                raise ValueError("must be the storage account's base64 access key") from None
        return v


class GCSConfig(_Config):
    """A Google Cloud Storage bucket."""

    bucket: str = Field(min_length=3, max_length=222)
    #: The service account's JSON key, inline.
    service_account_key: SecretStr | None = None
    #: Or the path of that JSON file on the server.
    service_account_path: str | None = None
    #: Emulator or private endpoint; default is the public GCS endpoint.
    base_url: str | None = None
    #: Anonymous access (public buckets, emulators).
    skip_signature: bool = False
    prefix: str = ""

    @field_validator("base_url")
    @classmethod
    def _base_url_url(cls, v: str | None) -> str | None:
        return _check_endpoint(v)

    @field_validator("service_account_key")
    @classmethod
    def _json(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            try:
                json.loads(v.get_secret_value())
            except ValueError:
                raise ValueError("must be the service account's JSON key, as text") from None
        return v


_MODELS: dict[str, type[_Config]] = {
    "local": LocalConfig,
    "s3": S3Config,
    "azure_blob": AzureBlobConfig,
    "gcs": GCSConfig,
}

#: Config fields that hold credentials, whatever the kind.
SECRET_FIELDS = frozenset(
    {"secret_access_key", "session_token", "account_key", "sas_token", "service_account_key"}
)

_HINTS = {
    "root": "set it to a directory path on the server",
    "bucket": "set it to the bucket's name",
    "container": "set it to the blob container's name",
    "account_name": "set it to the storage account's name",
    "endpoint": "give the service URL, e.g. http://127.0.0.1:8333",
    "base_url": "give the service URL, e.g. http://127.0.0.1:4443",
    "secret_access_key": "give both access_key_id and secret_access_key, or neither",
    "access_key_id": "give both access_key_id and secret_access_key, or neither",
    "service_account_key": "paste the service account's JSON key",
}


def _model(kind: str, config: dict[str, Any]) -> _Config:
    """The typed config of ``kind``, or ``InvalidDatastore`` naming each bad field (never its
    value, which may be a secret)."""
    model = _MODELS.get(kind)
    if model is None:
        raise InvalidDatastore(
            f"field 'kind': unknown datastore kind {kind!r}; use one of {', '.join(_MODELS)}"
        )
    try:
        parsed = model.model_validate(config)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(p) for p in err["loc"]) or "config"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(model.model_fields)
                msg = f"unknown field; the fields of kind {kind!r} are: {allowed}"
            elif err["type"] == "missing":
                msg = "required"
            hint = _HINTS.get(field.split(".")[0])
            problems.append(f"field {field!r}: {msg}" + (f" ({hint})" if hint else ""))
        raise InvalidDatastore(f"invalid {kind} datastore config: " + "; ".join(problems)) from None
    _check_pairs(kind, parsed)
    return parsed


def _check_pairs(kind: str, cfg: _Config) -> None:
    """Rules across fields, which pydantic's per-field messages cannot say well."""
    if isinstance(cfg, S3Config) and (cfg.access_key_id is None) != (cfg.secret_access_key is None):
        missing = "secret_access_key" if cfg.secret_access_key is None else "access_key_id"
        raise InvalidDatastore(
            f"invalid {kind} datastore config: field {missing!r}: required with the other key "
            "(give both access_key_id and secret_access_key, or neither for the environment's "
            "credentials)"
        )
    if (
        isinstance(cfg, AzureBlobConfig)
        and cfg.account_key is not None
        and cfg.sas_token is not None
    ):
        raise InvalidDatastore(
            f"invalid {kind} datastore config: field 'sas_token': give account_key or "
            "sas_token, not both"
        )
    if isinstance(cfg, GCSConfig) and cfg.service_account_key and cfg.service_account_path:
        raise InvalidDatastore(
            f"invalid {kind} datastore config: field 'service_account_path': give "
            "service_account_key or service_account_path, not both"
        )


def validate_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """Check a datastore's config at registration time; return it normalised for storage.

    Why at registration: a typo found when the first step reads its input fails a run hours
    later; found here it fails the registration, with the field to fix. The returned dict keeps
    the secrets (it is what the ``datastores`` table stores); show ``public_config`` instead.
    """
    parsed = _model(kind, config)
    if isinstance(parsed, LocalConfig) and not Path(parsed.root).is_absolute():
        # Checked here, at registration, not whenever a store is opened: the root is read by
        # services on the server, whose working directory a client cannot know.
        raise InvalidDatastore(
            f"invalid {kind} datastore config: field 'root': must be an absolute path (it is "
            "a directory on the API server's machine, not the client's)"
        )
    out = parsed.model_dump(exclude_none=True)
    for name, value in out.items():
        if isinstance(value, SecretStr):
            out[name] = value.get_secret_value()
    return out


def check_local_root(
    root: str, *, allowed: list[Path], state_dir: Path, reserved: list[Path]
) -> None:
    """Refuse a local datastore root outside ``allowed``, over ``state_dir`` or overlapping a
    ``reserved`` directory (the default datastore's root); ``InvalidDatastore`` says which.

    Why: whatever a local datastore's root holds, a ``read`` token lists and reads and a
    ``submit`` token writes through the API. Rooted at ``/etc`` or at the state directory (the
    workspace config holds the admin token) that is a way around every scope; rooted inside
    the default datastore it is a way around the digest checks of its blobs. Symlinks and
    ``..`` are resolved first, so neither can point the check elsewhere than the I/O.
    """
    real = Path(os.path.realpath(root))
    shown = ", ".join(str(a) for a in allowed)
    field = f"invalid local datastore config: field 'root': {root!r}"
    state = Path(os.path.realpath(state_dir))
    if state.is_relative_to(real):
        raise InvalidDatastore(
            f"{field} is the state directory {state_dir} or contains it (the workspace config, "
            f"tokens and database live there); pick a directory under {shown}"
        )
    for other in reserved:
        used = Path(os.path.realpath(other))
        if real.is_relative_to(used) or used.is_relative_to(real):
            raise InvalidDatastore(
                f"{field} overlaps the default datastore's root {other}, whose blobs and "
                f"environments are content-addressed; pick another directory under {shown}"
            )
    if not any(real.is_relative_to(os.path.realpath(a)) for a in allowed):
        resolved = "" if str(real) == root else f" (resolved: {real})"
        raise InvalidDatastore(
            f"{field}{resolved} is outside the directories local datastores may use ({shown}); "
            "pick a directory under one of them, or have the operator add one to "
            "HEADRACE_DATASTORE_ROOTS"
        )


class DatastoreRecord(BaseModel):
    """A registered datastore as stored in PostgreSQL (credentials never leave the server)."""

    name: str
    kind: DatastoreKind
    config: dict[str, Any]
    is_default: bool = False


def public_config(record: DatastoreRecord) -> dict[str, Any]:
    """The record's config with every credential replaced by ``"***"``: what an API, a log or
    a CLI may show. Fields that are absent stay absent, so a reader can tell "key set" from
    "anonymous"."""
    return {k: (REDACTED if k in SECRET_FIELDS else v) for k, v in record.config.items()}


def _record(row: asyncpg.Record) -> DatastoreRecord:
    config = row["config"]
    if isinstance(config, str):  # a connection without the jsonb codec
        config = json.loads(config)
    return DatastoreRecord(
        name=row["name"], kind=row["kind"], config=config, is_default=row["is_default"]
    )


async def load_datastore(conn: asyncpg.Pool | asyncpg.Connection, name: str) -> DatastoreRecord:
    """The datastore called ``name``, or ``UnknownDatastore`` naming the known ones."""
    row = await conn.fetchrow("SELECT * FROM datastores WHERE name = $1", name)
    if row is None:
        known = [r["name"] for r in await conn.fetch("SELECT name FROM datastores ORDER BY name")]
        raise UnknownDatastore(
            f"unknown datastore {name!r}; registered datastores: {', '.join(known) or 'none'}"
        )
    return _record(row)


async def list_datastores(conn: asyncpg.Pool | asyncpg.Connection) -> list[DatastoreRecord]:
    """Every registered datastore, by name (credentials included: show ``public_config``)."""
    return [_record(r) for r in await conn.fetch("SELECT * FROM datastores ORDER BY name")]


async def default_datastore(conn: asyncpg.Pool | asyncpg.Connection) -> DatastoreRecord:
    """The workspace's default datastore (registered by the bootstrap)."""
    row = await conn.fetchrow("SELECT * FROM datastores WHERE is_default")
    if row is None:
        raise UnknownDatastore("the workspace has no default datastore; run the bootstrap")
    return _record(row)


# --------------------------------------------------------------------------- stores


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
