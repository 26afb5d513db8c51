"""Snapshotter settings."""

from __future__ import annotations

from services.runtime.settings import RuntimeSettings

__all__ = ["SnapshotterSettings"]


class SnapshotterSettings(RuntimeSettings):
    """No knobs of its own yet; size limits arrive with the snapshot issue."""
