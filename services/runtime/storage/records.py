"""Registered datastores: their rows in PostgreSQL, and what of them may be shown."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import asyncpg
from pydantic import BaseModel

if TYPE_CHECKING:
    pass
from services.runtime.storage.config import (
    REDACTED,
    SECRET_FIELDS,
    DatastoreKind,
)
from services.runtime.storage.errors import (
    UnknownDatastore,
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
