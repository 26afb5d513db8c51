"""Scheduler errors.

Hierarchy::

    SchedulerError (PermanentError)   the event cannot be applied to the run's state
"""

from __future__ import annotations

from services.runtime.errors import PermanentError

__all__ = ["SchedulerError"]


class SchedulerError(PermanentError):
    """An event refers to a run or step the scheduler does not know."""
