"""Data mounter settings."""

from __future__ import annotations

from services.runtime.settings import RuntimeSettings

__all__ = ["DataMounterSettings"]


class DataMounterSettings(RuntimeSettings):
    """No knobs of its own yet; remote stores and FUSE mounts arrive with the datastore issue."""
