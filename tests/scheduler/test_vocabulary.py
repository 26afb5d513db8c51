"""The state vocabulary in Python and the database's CHECK constraints are the same sets."""

from __future__ import annotations

from enum import StrEnum

import asyncpg
import pytest

from contracts.status import AttemptOutcome, RunStatus, StepStatus
from services.runtime.states import AttemptStatus, StepPhase
from tests.harness import SchedulerHarness, pipeline, step

_CHECKS = [
    ("runs_status_check", RunStatus),
    ("steps_status_check", StepStatus),
    ("steps_phase_check", StepPhase),
    ("step_attempts_outcome_check", AttemptOutcome),
    ("step_attempts_status_check", AttemptStatus),
]


@pytest.mark.parametrize(("constraint", "enum"), _CHECKS)
async def test_database_accepts_exactly_the_enum_values(
    harness: SchedulerHarness, constraint: str, enum: type[StrEnum]
) -> None:
    """Each CHECK constraint lists exactly the members of its enum (no more, no fewer)."""
    definition = await harness.pool.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1", constraint
    )
    assert definition is not None, f"no constraint {constraint}"
    allowed = set(definition.split("'")[1::2])
    assert allowed == {str(m) for m in enum}


async def test_an_unknown_phase_is_refused(harness: SchedulerHarness) -> None:
    """Writing a phase outside the vocabulary fails instead of leaving a step no query finds."""
    await harness.start_run(pipeline(step("a")))
    with pytest.raises(asyncpg.CheckViolationError):
        await harness.pool.execute("UPDATE steps SET phase = 'mountng'")
