"""Scheduler settings."""

from __future__ import annotations

from pydantic import Field

from services.runtime.settings import RuntimeSettings

__all__ = ["SchedulerSettings"]


class SchedulerSettings(RuntimeSettings):
    """The scheduler's knobs on top of the shared connection settings."""

    #: timeout given to steps that set none (kills the whole process group)
    step_timeout_seconds: int = Field(default=3600, gt=0)
    #: new attempts given to a step whose runner was lost before it gives up
    max_lost_attempts: int = Field(default=3, ge=0)
    #: how often the watchdog looks for expired leases and commands lost with the broker
    watchdog_seconds: float = Field(default=1.0, gt=0)
    #: a command without any sign of progress for this long is sent again
    redeliver_after_seconds: float = Field(default=15.0, gt=0)
    #: runs whose parsed specification is kept in memory
    spec_cache_size: int = Field(default=256, gt=0)
