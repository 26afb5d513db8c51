"""Step runner errors.

Hierarchy::

    StepStartError (PermanentError)   the script could not be started (missing file, ...)
"""

from __future__ import annotations

from services.runtime.errors import PermanentError

__all__ = ["StepStartError"]


class StepStartError(PermanentError):
    """The step's process could not be started; the message says why."""
