"""Datastores: named object stores behind one API (obstore).

Every kind (a local directory now; S3, Azure Blob and GCS plug in the same way) is opened as an
obstore store, and services use only ``ObjectStore``. Keys are checked to stay inside their
datastore before any I/O.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import asyncpg
import obstore
from obstore.store import LocalStore
from pydantic import BaseModel

from contracts.snapshot import safe_relative_path
from services.runtime.errors import PermanentError

__all__ = [
    "DatastoreRecord",
    "ObjectStore",
    "UnknownDatastore",
    "default_datastore",
    "load_datastore",
    "open_datastore",
]


class UnknownDatastore(PermanentError):
    """No datastore has this name."""


class DatastoreRecord(BaseModel):
    """A registered datastore as stored in PostgreSQL (credentials never leave the server)."""

    name: str
    kind: Literal["local"]
    config: dict[str, Any]
    is_default: bool = False


def _record(row: asyncpg.Record) -> DatastoreRecord:
    return DatastoreRecord(
        name=row["name"], kind=row["kind"], config=row["config"], is_default=row["is_default"]
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


async def default_datastore(conn: asyncpg.Pool | asyncpg.Connection) -> DatastoreRecord:
    """The workspace's default datastore (registered by the bootstrap)."""
    row = await conn.fetchrow("SELECT * FROM datastores WHERE is_default")
    if row is None:
        raise UnknownDatastore("the workspace has no default datastore; run the bootstrap")
    return _record(row)


class ObjectStore:
    """One datastore opened for I/O."""

    def __init__(self, record: DatastoreRecord) -> None:
        self.record = record
        root = Path(record.config["root"])
        root.mkdir(parents=True, exist_ok=True)
        self.local_root: Path | None = root
        self._store = LocalStore(str(root), mkdir=True)

    @property
    def name(self) -> str:
        return self.record.name

    def local_path(self, key: str) -> Path | None:
        """The filesystem path of ``key`` when the datastore is a local directory."""
        if self.local_root is None:
            return None
        return self.local_root / safe_relative_path(key) if key else self.local_root

    async def put(self, key: str, data: bytes | Path) -> None:
        await obstore.put_async(self._store, safe_relative_path(key), data)

    async def get(self, key: str) -> bytes:
        result = await obstore.get_async(self._store, safe_relative_path(key))
        return bytes(await result.bytes_async())

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self._store, safe_relative_path(key))
        except FileNotFoundError:
            return False
        return True

    async def listing(self, prefix: str) -> list[tuple[str, int]]:
        """Every object under ``prefix`` (a directory-like prefix), with its size."""
        prefix = safe_relative_path(prefix).rstrip("/") if prefix else ""
        out: list[tuple[str, int]] = []
        async for batch in obstore.list(self._store, prefix=prefix or None):
            out.extend((m["path"], m["size"]) for m in batch)
        return sorted(out)

    async def list_meta(self, prefix: str) -> list[tuple[str, int, str]]:
        """Every object under ``prefix`` with its size and ETag (its content identity)."""
        prefix = safe_relative_path(prefix).rstrip("/") if prefix else ""
        out: list[tuple[str, int, str]] = []
        async for batch in obstore.list(self._store, prefix=prefix or None):
            out.extend((m["path"], m["size"], str(m.get("e_tag") or "")) for m in batch)
        return sorted(out)

    async def identity(self, key: str) -> list[tuple[str, int, str]]:
        """(name, size, ETag) of the object ``key``, or of every object under it: what a
        ``DataReference`` to ``key`` holds, so that a change anywhere below it is visible."""
        try:
            meta = await obstore.head_async(self._store, safe_relative_path(key))
        except (FileNotFoundError, ValueError):
            return await self.list_meta(key)
        return [(meta["path"], meta["size"], str(meta.get("e_tag") or ""))]

    async def download(self, key: str, dest: Path) -> int:
        """Copy one object to ``dest``; return its size."""
        data = await self.get(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return len(data)


def open_datastore(record: DatastoreRecord) -> ObjectStore:
    """Open a datastore for I/O (one place to add kinds)."""
    return ObjectStore(record)
