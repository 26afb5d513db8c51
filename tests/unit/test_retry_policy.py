"""The services' one retry policy: named errors only, bounded twice, a log line per retry."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from services.runtime.retry import fast_waits, retrying


async def _run(fails: list[BaseException], **policy: object) -> int:
    """Run an operation that raises each of ``fails`` in turn, then succeeds; return calls."""
    calls = 0
    async for attempt in retrying(what="op", **policy):  # type: ignore[arg-type]
        with attempt:
            calls += 1
            if calls <= len(fails):
                raise fails[calls - 1]
    return calls


async def test_retries_what_it_names_and_logs_before_each_wait() -> None:
    """Errors the predicate accepts are retried, with one ``retry.waiting`` line each."""
    with fast_waits(), capture_logs() as logs:
        calls = await _run(
            [ConnectionError("a"), ConnectionError("b")],
            on=lambda e: isinstance(e, ConnectionError),
            attempts=5,
            seconds=10,
        )
    assert calls == 3
    waits = [x for x in logs if x["event"] == "retry.waiting"]
    assert [(w["what"], w["attempt"]) for w in waits] == [("op", 1), ("op", 2)]


async def test_other_errors_are_raised_at_once() -> None:
    """An error the predicate does not accept is raised on the first attempt."""
    with fast_waits(), pytest.raises(ValueError, match="bad"):
        await _run([ValueError("bad")], on=lambda e: isinstance(e, OSError), attempts=5, seconds=5)


async def test_attempts_bound_the_retries() -> None:
    """After ``attempts`` tries the last error is raised."""
    with fast_waits(), pytest.raises(OSError, match="3"):
        await _run(
            [OSError("1"), OSError("2"), OSError("3"), OSError("4")],
            on=bool,
            attempts=3,
            seconds=60,
        )


async def test_a_policy_needs_both_bounds() -> None:
    """Zero attempts or no time bound is a programming error, refused when built."""
    with pytest.raises(ValueError, match="bound"):
        retrying(on=bool, attempts=0, seconds=1, what="op")
    with pytest.raises(ValueError, match="bound"):
        retrying(on=bool, attempts=3, seconds=0, what="op")
