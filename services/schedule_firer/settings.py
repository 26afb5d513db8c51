"""Schedule firer settings."""

from __future__ import annotations

from pydantic import Field

from services.runtime.settings import RuntimeSettings

__all__ = ["ScheduleFirerSettings"]


class ScheduleFirerSettings(RuntimeSettings):
    """How often the firer looks for due schedules, and how many it takes per look."""

    #: seconds between two looks for due schedules (a due time fires within this much)
    tick_seconds: float = Field(default=1.0, gt=0)
    #: due schedules acted on per look; the rest wait for the next one
    batch: int = Field(default=100, gt=0, le=10_000)
