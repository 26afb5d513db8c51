"""Snapshotter errors.

Hierarchy::

    SnapshotError (PermanentError)   see services.runtime.snapshots
"""

from __future__ import annotations

from services.runtime.snapshots import SnapshotError

__all__ = ["SnapshotError"]
