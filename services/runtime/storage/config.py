"""Datastore configurations by kind, validated; where local datastores may live."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

if TYPE_CHECKING:
    pass
from services.runtime.storage.errors import (
    InvalidDatastore,
)

DatastoreKind = Literal["local", "s3", "azure_blob", "gcs"]

#: What ``public_config`` shows instead of a credential.
REDACTED = "***"


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
