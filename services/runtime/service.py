"""Service lifecycle shared by every headrace service.

A service owns a database pool, a producer, an outbox and one consumer per subscription.
``start`` brings them up in order (second start raises), ``stop`` drains: stop fetching, let
in-flight handlers finish within a grace period, commit, close, and log one summary line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Self

import asyncpg
import structlog

from contracts.topics import Topics
from services.runtime.bus import (
    Consumer,
    DeadLetters,
    Producer,
    Subscription,
    ensure_topics,
    is_transient,
)
from services.runtime.db import create_pool, migrate
from services.runtime.errors import LifecycleError
from services.runtime.logging import configure_logging
from services.runtime.outbox import Delivery, Outbox
from services.runtime.retry import retrying
from services.runtime.settings import RuntimeSettings

__all__ = ["Service", "run_service"]

_log = structlog.get_logger("headrace.service")


class Service:
    """Base of every service; subclasses say what they consume in ``subscriptions``."""

    name = "service"

    def __init__(self, settings: RuntimeSettings, *, instance_id: str | None = None) -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.instance_id = instance_id or f"{self.name}-{socket.gethostname()}-{os.getpid()}"
        self._state = "new"
        self._consumers: list[Consumer] = []
        self._consumer_tasks: list[asyncio.Task[None]] = []
        self._background: list[asyncio.Task[Any]] = []
        self._started_at = 0.0
        self._pool: asyncpg.Pool | None = None
        self._producer: Producer | None = None
        self._outbox: Outbox | None = None
        self._stack = contextlib.AsyncExitStack()
        self._grace = 10.0
        #: set when a consumer loop died: the process should exit so that it is restarted
        self.crashed = asyncio.Event()

    # -- what subclasses use -------------------------------------------------------------

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise LifecycleError(f"{self.name}: not started")
        return self._pool

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise LifecycleError(f"{self.name}: not started")
        return self._producer

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise LifecycleError(f"{self.name}: not started")
        return self._outbox

    def delivery(self, group: str) -> Delivery:
        """Transactions whose inbox entries belong to consumer group ``group``."""
        return Delivery(self.pool, self.outbox, group)

    async def subscriptions(self) -> list[Subscription]:
        """The consumer groups this service runs (none by default)."""
        return []

    def compute_targets(self) -> list[str]:
        """Compute targets whose dispatch topics this service needs at start."""
        return []

    async def on_start(self) -> None:
        """Hook run after connections are up and before consuming starts."""

    async def on_stop(self) -> None:
        """Hook run after consuming stopped and before connections close."""

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a background task until the service stops."""
        self._background.append(asyncio.create_task(coro))

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bring everything up in order; on any failure unwind what started, then raise.

        Why an exit stack: each resource registers its own cleanup as it comes up, so a start
        that fails half way (the broker gone, a hook raising) closes exactly what it opened,
        and ``stop`` is the same unwinding.
        """
        if self._state != "new":
            raise LifecycleError(f"{self.name}: start() called twice")
        self._state = "starting"
        self._started_at = time.monotonic()
        try:
            await self._start(self._stack)
        except BaseException:
            self._state = "failed"
            await self._stack.aclose()
            raise
        self._state = "running"
        _log.info("service.started", service=self.name, instance=self.instance_id)

    async def _start(self, stack: contextlib.AsyncExitStack) -> None:
        await self._retrying(lambda: self._connect(stack))
        stack.push_async_callback(self._cancel_background)
        await self.on_start()
        stack.push_async_callback(self.on_stop)
        for sub in await self.subscriptions():
            consumer = Consumer(
                self.settings,
                sub,
                DeadLetters(self.producer, self.topics, sub.group),
                client_id=self.instance_id,
            )
            await self._retrying(consumer.start)
            stack.push_async_callback(self._close_quietly, consumer)
            self._consumers.append(consumer)
        stack.push_async_callback(self._drain)
        for c in self._consumers:
            task = asyncio.create_task(c.run(), name=f"{self.name}:{c.group}")
            task.add_done_callback(self._consumer_ended)
            self._consumer_tasks.append(task)
        self.spawn(self.outbox.run_relay())
        self.spawn(self.outbox.run_cleaner())

    def _consumer_ended(self, task: asyncio.Task[None]) -> None:
        """A consumer loop only returns when asked to; one that died takes the service down.

        Why: a process that stays up holding its partitions without consuming them stops
        that phase for good and silently. Failing loudly lets the supervisor (or Kubernetes)
        restart it, and the consumer loop dead-letters what killed it so it cannot again.
        """
        if task.cancelled() or self._state != "running":
            return
        exc = task.exception()
        _log.error(
            "service.consumer_died",
            service=self.name,
            consumer=task.get_name(),
            error=repr(exc) if exc else "returned without being stopped",
        )
        self.crashed.set()

    async def _drain(self) -> None:
        """Stop fetching and let in-flight handlers finish within the grace period."""
        for c in self._consumers:
            c.stop_fetching()
        if self._consumer_tasks:
            _done, pending = await asyncio.wait(self._consumer_tasks, timeout=self._grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._consumer_tasks, return_exceptions=True)

    @staticmethod
    async def _close_quietly(consumer: Consumer) -> None:
        with contextlib.suppress(Exception):
            await consumer.close()

    async def _cancel_background(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def _retrying(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run a start-up step, retrying transient failures up to ``start_timeout_seconds``."""
        async for attempt in retrying(
            on=is_transient,
            attempts=10_000,  # bounded by time: the broker or database may take a while
            seconds=self.settings.start_timeout_seconds,
            what=f"{self.name} start-up",
            first_wait=0.2,
            max_wait=3,
        ):
            with attempt:
                await step()

    async def _connect(self, stack: contextlib.AsyncExitStack) -> None:
        """Database (migrated), topics, producer: what must answer before consuming starts.

        Retried as a whole on transient errors: a service restarted while the broker or the
        database is itself restarting waits for them rather than exiting. What came up in an
        earlier try is kept (and already registered for cleanup).
        """
        s = self.settings
        await migrate(s.database_url)
        if self._pool is None:
            self._pool = await create_pool(s.database_url, max_size=s.db_pool_max)
            stack.push_async_callback(self._pool.close)
        await ensure_topics(s, self.compute_targets())
        if self._producer is None:
            producer = Producer(s.kafka_bootstrap, client_id=self.instance_id)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
            stack.push_async_callback(producer.stop)
        if self._outbox is None:
            self._outbox = Outbox(
                self._pool,
                self._producer,
                self.topics,
                source=f"/{self.name}",
                signing_key=s.event_key_bytes,
            )
            stack.push_async_callback(self._outbox.delete_published)

    async def stop(self, grace: float = 10.0) -> None:
        """Drain and close; calling it again (or before start) does nothing."""
        if self._state != "running":
            return
        self._state = "stopping"
        self._grace = grace
        await self._stack.aclose()
        self._state = "stopped"
        _log.info(
            "service.stopped",
            service=self.name,
            handled=sum(c.handled for c in self._consumers),
            dead_lettered=sum(c.dead_lettered for c in self._consumers),
            uptime_s=round(time.monotonic() - self._started_at, 1),
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def _run(service: Service) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await service.start()
    try:
        signalled = asyncio.create_task(stop.wait())
        crashed = asyncio.create_task(service.crashed.wait())
        await asyncio.wait({signalled, crashed}, return_when=asyncio.FIRST_COMPLETED)
        signalled.cancel()
        crashed.cancel()
    finally:
        await service.stop()
    return 1 if service.crashed.is_set() else 0


def run_service(service: Service) -> None:
    """Run ``service`` until SIGTERM or SIGINT, then drain (the ``__main__`` of each service).

    Exits with status 1 when a consumer died, so that whatever supervises the process
    restarts it.
    """
    configure_logging(service.settings.log_level, service.settings.log_format)
    if asyncio.run(_run(service)):
        raise SystemExit(1)
