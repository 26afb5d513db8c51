"""The data mounter keeps no tables of its own: it reads datastores (services.runtime.storage)."""

from __future__ import annotations

from services.runtime.storage import load_datastore

__all__ = ["load_datastore"]
