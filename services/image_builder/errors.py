"""Image builder errors.

Hierarchy::

    UnknownEnvironment (PermanentError)   no environment of this name can be resolved
"""

from __future__ import annotations

from services.runtime.errors import PermanentError

__all__ = ["UnknownEnvironment"]


class UnknownEnvironment(PermanentError):
    """No environment of this name can be resolved."""
