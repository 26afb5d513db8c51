"""The snapshot manifest: which files a source directory holds, by content digest.

The SDK writes it, uploads the blobs the store lacks and then the manifest itself (as a blob);
the snapshotter verifies it; runners materialise it. The manifest's own digest names the
snapshot, so equal trees share one snapshot whoever submits them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contracts.text import bad_character

__all__ = [
    "BLOB_PREFIX",
    "DIGEST_PATTERN",
    "ManifestEntry",
    "SnapshotManifest",
    "blob_key",
    "digest_bytes",
    "digest_file",
    "safe_relative_path",
]

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"
#: The default datastore's prefix of content-addressed blobs (``blob_key``).
BLOB_PREFIX = "blobs"
_CHUNK = 1024 * 1024


def digest_bytes(data: bytes) -> str:
    """The content digest used everywhere in headrace."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_file(path: Path) -> tuple[str, int]:
    """``(digest, size)`` of a file, read in chunks so that big files cost no memory."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def blob_key(digest: str) -> str:
    """Where a content-addressed blob lives in the workspace's default datastore."""
    hexd = digest.removeprefix("sha256:")
    return f"{BLOB_PREFIX}/sha256/{hexd[:2]}/{hexd}"


def safe_relative_path(path: str) -> str:
    """Return ``path`` if it is a relative POSIX path staying inside its root, else raise.

    Why here: manifests come from clients, and a path such as ``../../etc/passwd`` or
    ``/etc/passwd`` must never be written outside the directory it is materialised into, and
    a key with a control character in it is refused by every object store's path parser.
    """
    if (bad := bad_character(path)) is not None:
        raise ValueError(f"path {path!r} holds {bad}; rename the file or key without it")
    p = PurePosixPath(path)
    if not path or p.is_absolute() or path.startswith("\\") or ":" in p.parts[0]:
        raise ValueError(
            f"path {path!r} must be relative (to the source directory, or the datastore's root)"
        )
    if any(part in ("..", "") for part in p.parts) or "\\" in path:
        raise ValueError(f"path {path!r} must not contain '..' components or backslashes")
    return p.as_posix()


class ManifestEntry(BaseModel):
    """One file of the snapshot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    digest: str = Field(pattern=DIGEST_PATTERN)
    size: int = Field(ge=0)
    executable: bool = False

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return safe_relative_path(value)


class SnapshotManifest(BaseModel):
    """Every file of a snapshot, sorted by path."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    files: list[ManifestEntry]

    @field_validator("files")
    @classmethod
    def _unique_sorted(cls, files: list[ManifestEntry]) -> list[ManifestEntry]:
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise ValueError("a path appears twice in the manifest")
        return sorted(files, key=lambda f: f.path)

    def canonical_bytes(self) -> bytes:
        """The bytes whose digest names the snapshot."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode()

    @property
    def digest(self) -> str:
        return digest_bytes(self.canonical_bytes())

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)
