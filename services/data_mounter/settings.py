"""Data mounter settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.data_mounter.fuse import MountOptions
from services.runtime.settings import RuntimeSettings

__all__ = ["DataMounterSettings"]


class DataMounterSettings(RuntimeSettings):
    """The node's data cache and FUSE mounts of remote datastores (``HEADRACE_*``)."""

    #: Bytes of remote objects kept on the node for the next step that reads them; entries a
    #: running step links are kept even past it. Evicted least recently used.
    data_cache_bytes: int = Field(default=20 * 2**30, ge=0)
    #: Mount remote datastores with rclone in mount mode; off, mount mode copies (with a note).
    fuse_mounts: bool = True
    #: How long a mount may take to come up before the input is copied instead.
    mount_timeout_seconds: float = Field(default=30.0, gt=0)
    #: rclone's ``--vfs-cache-mode``: ``off`` streams; ``full`` keeps a disk copy (random I/O).
    mount_vfs_cache_mode: str = Field(default="off", pattern="^(off|minimal|writes|full)$")
    #: rclone's in-memory read-ahead per open file.
    mount_buffer_size: str = Field(default="64M", pattern="^[0-9]+[KMG]?$")

    @property
    def data_cache(self) -> Path:
        """The node's cache of remote objects (``<cache>/data``)."""
        return self.cache / "data"

    def mount_options(self) -> MountOptions:
        return MountOptions(
            vfs_cache_mode=self.mount_vfs_cache_mode,
            buffer_size=self.mount_buffer_size,
            timeout_seconds=self.mount_timeout_seconds,
        )
