"""Datastores: named object stores behind one API (obstore).

The package: ``errors``, ``config`` (kinds and their validation), ``records`` (rows in
PostgreSQL) and ``objects`` (``ObjectStore``), re-exported here.

Every kind (a local directory, S3 or an S3-compatible server, Azure Blob, Google Cloud Storage)
is opened as an obstore store, and services use only ``ObjectStore``: they never learn which
kind they talk to. Keys are checked to stay inside their datastore before any I/O, whatever the
kind, because keys come from clients.

Credentials live in the datastore's ``config`` in PostgreSQL and nowhere else: ``public_config``
is what may be shown, and every error raised here is built from the datastore's name, the key
and a redacted summary of the cause, so a credential never reaches a log, an event or a client.
"""

from __future__ import annotations

from services.runtime.storage.config import (
    REDACTED,
    SECRET_FIELDS,
    AzureBlobConfig,
    DatastoreKind,
    GCSConfig,
    LocalConfig,
    S3Config,
    check_local_root,
    validate_config,
)
from services.runtime.storage.errors import (
    DatastoreError,
    InvalidDatastore,
    InvalidKey,
    ObjectNotFound,
    UnknownDatastore,
)
from services.runtime.storage.objects import (
    STREAM_CHUNK,
    ObjectStore,
    open_datastore,
    open_named,
)
from services.runtime.storage.records import (
    DatastoreRecord,
    default_datastore,
    list_datastores,
    load_datastore,
    public_config,
)

__all__ = [
    "REDACTED",
    "SECRET_FIELDS",
    "STREAM_CHUNK",
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
