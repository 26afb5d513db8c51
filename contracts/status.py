"""The public vocabulary of run and step states, shared by events, the API, the SDK and tests.

Why enums of strings: the values are what the API returns, what the database stores (checked
by ``CHECK`` constraints, migration 008) and what Azure ML v1 code compares against
(``run.get_status() == "Completed"``), so a ``StrEnum`` member is also the plain string.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AttemptOutcome", "RunStatus", "StepStatus"]


class RunStatus(StrEnum):
    """Where a run is: ``Queued`` until the scheduler starts it, then ``Running``, then one of
    the terminal states."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @classmethod
    def active(cls) -> tuple[RunStatus, ...]:
        """States from which a run can still change."""
        return (cls.QUEUED, cls.RUNNING)

    @classmethod
    def terminal(cls) -> tuple[RunStatus, ...]:
        return (cls.COMPLETED, cls.FAILED, cls.CANCELED)


class StepStatus(StrEnum):
    """Where a step is, as users see it (the scheduler's finer ``StepPhase`` is internal)."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    SKIPPED = "Skipped"
    CANCELED = "Canceled"

    @classmethod
    def terminal(cls) -> tuple[StepStatus, ...]:
        """States a step never leaves."""
        return (cls.COMPLETED, cls.FAILED, cls.SKIPPED, cls.CANCELED)


class AttemptOutcome(StrEnum):
    """How one attempt's script ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ERROR = "error"
