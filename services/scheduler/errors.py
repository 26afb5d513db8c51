"""Scheduler errors.

Hierarchy::

    SchedulerError (PermanentError)   the event cannot be applied to the run's state
    └── ResultRefused                 a phase result that does not match the attempt it names
"""

from __future__ import annotations

from services.runtime.errors import PermanentError

__all__ = ["ResultRefused", "SchedulerError"]


class SchedulerError(PermanentError):
    """An event refers to a run or step the scheduler does not know."""


class ResultRefused(SchedulerError):
    """A phase result that contradicts what the database says of its attempt (another runner,
    an attempt that has not finished, outputs other than the ones dispatched): a forged or
    corrupted event. Dead-lettered with the reason; the step is left as it was."""
