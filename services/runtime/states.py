"""The internal states services share through the database: a step's phase and an attempt's
status. Values are the strings stored in the ``steps.phase`` and ``step_attempts.status``
columns (checked by ``CHECK`` constraints, migration 008); SQL takes them as parameters.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AttemptStatus", "StepPhase"]


class StepPhase(StrEnum):
    """Which part of the saga a step is in.

    ``waiting`` (for upstream steps and prerequisites) -> ``mounting`` (inputs being bound;
    skipped by steps without inputs) -> ``dispatched`` (on its compute target's topic) ->
    ``running`` -> ``uploading`` (outputs being committed) -> ``done``. ``waiting_reuse``: an
    identical step runs in another run; this one waits to reuse its result.
    """

    WAITING = "waiting"
    WAITING_REUSE = "waiting_reuse"
    MOUNTING = "mounting"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    UPLOADING = "uploading"
    DONE = "done"

    @classmethod
    def claimable(cls) -> list[str]:
        """Phases in which a runner may claim the step's current attempt."""
        return [cls.MOUNTING, cls.DISPATCHED]

    @classmethod
    def leased(cls) -> list[str]:
        """Phases in which a claimed attempt's lease matters (before its script ended)."""
        return [cls.MOUNTING, cls.DISPATCHED, cls.RUNNING]

    @classmethod
    def in_flight(cls) -> list[str]:
        """Phases of a step whose current attempt is out with a phase service."""
        return [cls.MOUNTING, cls.DISPATCHED, cls.RUNNING, cls.UPLOADING]

    @classmethod
    def not_started(cls) -> list[str]:
        """Phases of a step that has not been released yet."""
        return [cls.WAITING, cls.WAITING_REUSE]


class AttemptStatus(StrEnum):
    """An attempt's claim in ``step_attempts``: held by a runner, ended, or taken back."""

    RUNNING = "running"  # the runner holds the lease
    FINISHED = "finished"  # the script ended
    FENCED = "fenced"  # the lease expired; the step got a new attempt
    CANCELED = "canceled"  # the run was canceled
    RELEASED = "released"  # the runner shut down and handed the attempt back
