"""Service lifecycle against the real broker and database: what a failed start leaves open."""

from __future__ import annotations

import asyncio

import pytest

from services.runtime.bus import Consumer, DeadLetterFailed, Subscription
from services.runtime.errors import LifecycleError
from services.runtime.service import Service
from services.runtime.settings import RuntimeSettings


def _connections_closed(svc: Service) -> bool:
    """Whether the service's database pool and Kafka producer were both opened and closed."""
    pool, producer = svc._pool, svc._producer
    assert pool is not None
    assert producer is not None
    return bool(getattr(pool, "_closed", False) and producer._producer._closed)


class _FailsOnStart(Service):
    """A service whose start hook raises after its pool and producer are up."""

    name = "fails-on-start"

    async def on_start(self) -> None:
        raise RuntimeError("hook failed")


async def test_failed_start_closes_what_it_opened(runtime_settings: RuntimeSettings) -> None:
    """A start that fails after connecting closes its pool and producer, and the service
    cannot be started again or left half-running."""
    svc = _FailsOnStart(runtime_settings)
    with pytest.raises(RuntimeError, match="hook failed"):
        await svc.start()
    assert _connections_closed(svc)
    await svc.stop()  # nothing left to do, and no error
    with pytest.raises(LifecycleError):
        await svc.start()


async def test_stop_unwinds_a_started_service(runtime_settings: RuntimeSettings) -> None:
    """A started service stops cleanly: pool and producer closed, stop idempotent."""
    svc = Service(runtime_settings)
    await svc.start()
    await svc.stop()
    assert _connections_closed(svc)
    await svc.stop()


class _OneConsumer(Service):
    """A service with one subscription (its handlers never matter here)."""

    name = "one-consumer"

    async def subscriptions(self) -> list[Subscription]:
        return [Subscription(group="g", topics=[self.topics.run_requests], handlers={})]


async def test_a_consumer_that_dies_marks_the_service_crashed(
    runtime_settings: RuntimeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer loop ending with an error sets ``crashed`` (the process then exits 1 so its
    supervisor restarts it) rather than leaving a live process that consumes nothing."""

    async def dies(self: Consumer) -> None:
        raise DeadLetterFailed("cannot dead-letter")

    monkeypatch.setattr(Consumer, "run", dies)
    svc = _OneConsumer(runtime_settings)
    await svc.start()
    try:
        await asyncio.wait_for(svc.crashed.wait(), timeout=10)
    finally:
        await svc.stop()
