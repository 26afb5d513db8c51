"""Schedule firer errors.

Hierarchy::

    ScheduleFirerError (PermanentError)
        ScheduleBroken          its stored recurrence or trigger cannot be used any more

A firing that cannot start its run for a reason that belongs to the pipeline (it was disabled
or deleted) is not an error here: the occurrence is recorded as skipped with that reason.
"""

from __future__ import annotations

from services.runtime.errors import PermanentError

__all__ = ["ScheduleBroken", "ScheduleFirerError"]


class ScheduleFirerError(PermanentError):
    """Root of the schedule firer's errors."""


class ScheduleBroken(ScheduleFirerError):
    """A stored schedule that can never fire again; it is disabled with this reason."""
