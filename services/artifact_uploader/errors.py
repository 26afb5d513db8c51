"""Artifact uploader errors.

Hierarchy::

    UploadError (PermanentError)   outputs, logs or metrics could not be committed
"""

from __future__ import annotations

from services.runtime.errors import PermanentError

__all__ = ["UploadError"]


class UploadError(PermanentError):
    """Something in scratch could not be committed; the message names it."""
