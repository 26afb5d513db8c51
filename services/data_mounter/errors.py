"""Data mounter errors.

Hierarchy::

    InputDataError (PermanentError)   an input cannot be bound: names datastore and path
"""

from __future__ import annotations

from services.runtime.errors import PermanentError

__all__ = ["InputDataError"]


class InputDataError(PermanentError):
    """An input cannot be bound; the message names the datastore and the path."""
