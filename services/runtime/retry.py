"""The one retry policy of the services, on tenacity.

Every retry in headrace goes through ``retrying``: it names what it retries (``on=``, a
predicate such as ``is_transient``; there is no default), is bounded both in attempts and in
time, waits with exponential backoff and jitter (so services restarted together do not retry
in lockstep), and logs one line before each wait saying what failed and when it tries again.
``fast_waits`` makes every wait zero, so tests of retry behaviour take no time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
    wait_none,
)

__all__ = ["fast_waits", "retrying"]

_log = structlog.get_logger("headrace.retry")
_fast = False


def retrying(
    *,
    on: Callable[[BaseException], bool],
    attempts: int,
    seconds: float,
    what: str,
    first_wait: float = 0.1,
    max_wait: float = 5.0,
) -> AsyncRetrying:
    """An ``async for attempt in retrying(...)`` loop: retry errors ``on`` accepts, at most
    ``attempts`` times and for at most ``seconds``, then re-raise the last error.

    ``what`` names the operation in the log line written before each retry.
    """
    if attempts < 1 or seconds <= 0:
        raise ValueError("a retry needs at least one attempt and a positive time bound")

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        _log.warning(
            "retry.waiting",
            what=what,
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=repr(error),
        )

    return AsyncRetrying(
        retry=retry_if_exception(on),
        stop=stop_after_attempt(attempts) | stop_after_delay(seconds),
        wait=wait_none() if _fast else wait_exponential_jitter(multiplier=first_wait, max=max_wait),
        before_sleep=before_sleep,
        reraise=True,
    )


@contextlib.contextmanager
def fast_waits() -> Iterator[None]:
    """Within this block, retries built by ``retrying`` do not wait between attempts."""
    global _fast
    before, _fast = _fast, True
    try:
        yield
    finally:
        _fast = before
