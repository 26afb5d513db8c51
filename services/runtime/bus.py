"""Kafka plumbing: the producer, topic creation, and the consumer loop every service uses.

The consumer loop makes each message's outcome explicit: handled (offset committed after the
handler's database transaction), already processed (committed, no second effect), or
dead-lettered with the reason (committed, the loop goes on). Transient failures are retried a
bounded number of times first. Offsets are committed per partition after each batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
)

from contracts.envelope import DecodedEvent, EnvelopeError, Message, decode
from contracts.events import Event
from contracts.limits import MAX_DEAD_LETTER_BYTES, PRODUCER_MAX_REQUEST_BYTES
from contracts.topics import Topics
from services.runtime.errors import AlreadyProcessed
from services.runtime.retry import retrying
from services.runtime.settings import RuntimeSettings
from services.runtime.signing import verify

__all__ = [
    "Consumer",
    "DeadLetterFailed",
    "DeadLetters",
    "EventSender",
    "Handler",
    "Producer",
    "Subscription",
    "consumer_group",
    "ensure_topics",
    "is_transient",
]

_log = structlog.get_logger("headrace.bus")

Handler = Callable[[Any, DecodedEvent], Awaitable[None]]


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: lost connections, serialization conflicts, broker hiccups.

    An error that says whether it is ``retriable`` decides for itself: ``ObjectNotFound`` is a
    ``FileNotFoundError`` (an ``OSError``) that retrying cannot fix, and says so.
    """
    retriable = getattr(exc, "retriable", None)
    if isinstance(retriable, bool):
        return retriable
    return isinstance(
        exc,
        (
            OSError,
            asyncio.TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            # the server is starting, shutting down or terminated our session
            asyncpg.exceptions.OperatorInterventionError,
            asyncpg.SerializationError,
            asyncpg.DeadlockDetectedError,
            KafkaConnectionError,
        ),
    )


class EventSender(Protocol):
    """What the outbox and the dead-letter path need of a producer.

    Why a protocol: the scheduler's decisions are tested against the real database with a
    recording sender in place of Kafka (``tests/harness.py``), through the same code paths.
    """

    async def send_many(self, items: Sequence[tuple[str, Message]]) -> None:
        """Send every message; return once the broker acknowledged all of them."""
        ...


class Producer:
    """A started aiokafka producer sending pre-encoded messages.

    No idempotent producer or transactions (the embedded broker lacks them): duplicates are
    absorbed by the consumers' inbox.
    """

    def __init__(self, bootstrap: str, *, client_id: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            acks="all",
            linger_ms=0,
            enable_idempotence=False,
            request_timeout_ms=15000,
            # matches a broker's default limit; events stay under MAX_EVENT_BYTES (limits.py)
            max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send_many(self, items: Sequence[tuple[str, Message]]) -> None:
        """Send every message and wait until the broker acknowledged all of them."""
        futures = [
            await self._producer.send(topic, msg.value, key=msg.key, headers=msg.headers)
            for topic, msg in items
        ]
        if futures:
            await asyncio.gather(*futures)


async def ensure_topics(settings: RuntimeSettings, compute_targets: Sequence[str]) -> None:
    """Create the catalogue's topics (and one dispatch topic per compute target) if missing.

    Why at every start: the embedded broker keeps topics in memory and restarts empty.
    """
    topics = Topics(settings.topic_prefix)
    names = topics.fixed() + [topics.dispatch(t) for t in compute_targets]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(n, num_partitions=settings.topic_partitions, replication_factor=1)
            for n in names
            if n not in existing
        ]
        if missing:
            # another service may create them concurrently
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


def consumer_group(prefix: str, group: str) -> str:
    """The Kafka consumer group id of a subscription's ``group`` in one installation."""
    return f"{prefix}{group}"


class DeadLetterFailed(RuntimeError):
    """Even a reference to the record could not be dead-lettered (the broker is away).

    Escapes the consumer loop on purpose: the service exits, is restarted, re-reads the record
    from the last committed offset and dead-letters it then."""


class DeadLetters:
    """Sends messages that cannot be handled to the dead-letter topic, with the reason.

    A record too large to be sent again whole (a 5 MB record on a topic, say) is dead-lettered
    as a reference: its topic, partition, offset, size and the reason, so an operator can
    fetch it from the original topic while it is retained.
    """

    def __init__(
        self,
        producer: EventSender,
        topics: Topics,
        consumer: str,
        *,
        retry_seconds: float = 30.0,
    ) -> None:
        self._producer = producer
        self._topic = topics.deadletter
        self._consumer = consumer
        self._retry_seconds = retry_seconds

    async def send(self, record: Any, reason: str) -> None:
        """Dead-letter ``record`` whole, or as a reference when it is too large to send."""
        value = record.value or b""
        headers = list(record.headers or [])
        size = len(value) + len(record.key or b"") + sum(len(k) + len(v) for k, v in headers)
        msg = self._whole(record, reason) if size <= MAX_DEAD_LETTER_BYTES else None
        if msg is not None:
            try:
                await self._send(msg)
            except _REFUSED as exc:
                reason = f"{reason} (the whole record was refused: {type(exc).__name__})"
                msg = None
        if msg is None:
            await self._send(self._reference(record, reason, size))
        _log.warning(
            "bus.dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            size=size,
            by_reference=msg is None,
            reason=reason[:500],
        )

    def _headers(self, record: Any, reason: str) -> list[tuple[str, bytes]]:
        return [
            ("x-headrace-dlq-reason", reason[:4000].encode()),
            ("x-headrace-dlq-topic", str(record.topic).encode()),
            ("x-headrace-dlq-partition", str(record.partition).encode()),
            ("x-headrace-dlq-offset", str(record.offset).encode()),
            ("x-headrace-dlq-consumer", self._consumer.encode()),
        ]

    def _whole(self, record: Any, reason: str) -> Message:
        headers = [*(record.headers or []), *self._headers(record, reason)]
        return Message(key=record.key, value=record.value or b"", headers=headers)

    def _reference(self, record: Any, reason: str, size: int) -> Message:
        """A small record that says where the original is and why it was dead-lettered."""
        kept = [(k, v) for k, v in record.headers or [] if k.startswith("ce_") and len(v) <= 512]
        ref = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "size": size,
            "reason": reason[:4000],
        }
        key = record.key if record.key is not None and len(record.key) <= 1024 else None
        return Message(
            key=key,
            value=json.dumps(ref).encode(),
            headers=[*kept, *self._headers(record, reason), ("x-headrace-dlq-reference", b"1")],
        )

    async def _send(self, msg: Message) -> None:
        """Send, retrying transient broker errors; give up with ``DeadLetterFailed``."""
        try:
            async for attempt in retrying(
                on=_worth_resending,
                attempts=100,
                seconds=self._retry_seconds,
                what="dead-letter send",
                first_wait=0.2,
            ):
                with attempt:
                    await self._producer.send_many([(self._topic, msg)])
        except _REFUSED:
            raise
        except Exception as exc:
            raise DeadLetterFailed(f"cannot dead-letter to {self._topic}: {exc!r}") from exc


#: the broker will never take this record as it is
_REFUSED = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)


def _worth_resending(exc: BaseException) -> bool:
    """A dead-letter send that may work if tried again (never a record the broker refused)."""
    return not isinstance(exc, _REFUSED) and (is_transient(exc) or isinstance(exc, KafkaError))


@dataclass
class Subscription:
    """One consumer group: its topics and a handler per event type."""

    group: str
    topics: list[str]
    handlers: Mapping[type[Event], Handler]
    max_records: int = 200
    #: consume records without a valid signature (only the public run-request input does)
    accept_unsigned: bool = False
    #: how long to wait for a transient failure to pass before dead-lettering
    retry_seconds: float = 30.0
    retry_attempts: int = 6
    extra: dict[str, Any] = field(default_factory=dict)


class Consumer:
    """Runs one subscription: fetch, decode, handle, commit; never stops on a bad message."""

    def __init__(
        self,
        settings: RuntimeSettings,
        subscription: Subscription,
        dead_letters: DeadLetters,
        *,
        client_id: str,
    ) -> None:
        self._sub = subscription
        self._dlq = dead_letters
        self._key = settings.event_key_bytes
        self._stopping = asyncio.Event()
        self._consumer = AIOKafkaConsumer(
            *subscription.topics,
            bootstrap_servers=settings.kafka_bootstrap,
            # prefixed like the topics, so installations sharing a broker never share a group
            group_id=consumer_group(settings.topic_prefix, subscription.group),
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.consumer_session_timeout_ms,
            heartbeat_interval_ms=max(100, settings.consumer_session_timeout_ms // 3),
            max_poll_interval_ms=24 * 3600 * 1000,
            fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
            metadata_max_age_ms=5000,
        )
        self.handled = 0
        self.dead_lettered = 0
        self._empty_polls = 0
        self._busy_wait_ms = settings.consumer_fetch_max_wait_ms
        self._idle_wait_ms = max(settings.consumer_idle_fetch_wait_ms, self._busy_wait_ms)

    @property
    def group(self) -> str:
        """The subscription's consumer group (without the installation's prefix)."""
        return self._sub.group

    async def start(self) -> None:
        await self._consumer.start()

    def stop_fetching(self) -> None:
        """Ask the loop to finish the batch in hand and return."""
        self._stopping.set()

    async def close(self) -> None:
        await self._consumer.stop()

    async def run(self) -> None:
        """Consume until ``stop_fetching``; each batch is handled, then its offsets committed."""
        while not self._stopping.is_set():
            try:
                batch = await self._consumer.getmany(
                    timeout_ms=200, max_records=self._sub.max_records
                )
            except KafkaError as exc:
                _log.warning("bus.fetch_failed", group=self._sub.group, error=str(exc))
                await asyncio.sleep(0.5)
                continue
            self._adapt_fetch_wait(bool(batch))
            for tp, records in batch.items():
                for record in records:
                    await self._process(record)
                await self._commit(tp, records[-1].offset + 1)

    def _adapt_fetch_wait(self, got_data: bool) -> None:
        """Poll fast while busy, slowly once idle for a while.

        Why: the embedded broker holds every empty fetch for the full max-wait, so that wait
        bounds each hop's latency (keep it short while messages flow) while a dozen idle
        consumers polling every few milliseconds cost the broker more CPU than the work itself.
        After ~1 s without messages the wait grows to ``consumer_idle_fetch_wait_ms``; the first
        message brings it back. aiokafka fixes the wait at construction, so this adjusts its
        fetcher; without that attribute it does nothing.
        """
        fetcher = getattr(self._consumer, "_fetcher", None)
        if fetcher is None or not hasattr(fetcher, "_fetch_max_wait_ms"):
            return
        if got_data:
            self._empty_polls = 0
            fetcher._fetch_max_wait_ms = self._busy_wait_ms
        else:
            self._empty_polls += 1
            if self._empty_polls == 5:
                fetcher._fetch_max_wait_ms = self._idle_wait_ms

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        try:
            await self._consumer.commit({tp: offset})
        except KafkaError as exc:
            # A rebalance took the partition away: the new owner re-reads from the last
            # commit and the inbox absorbs what we already handled.
            _log.warning("bus.commit_failed", group=self._sub.group, error=str(exc))

    async def _process(self, record: Any) -> None:
        structlog.contextvars.clear_contextvars()
        if (
            self._key is not None
            and not self._sub.accept_unsigned
            and not verify(self._key, record.value, record.headers or [])
        ):
            self.dead_lettered += 1
            await self._dlq.send(
                record,
                "unauthenticated event: missing or wrong x-headrace-signature (only headrace's "
                "services may produce to internal topics)",
            )
            return
        try:
            decoded = decode(record.key, record.value, record.headers or [])
        except EnvelopeError as exc:
            self.dead_lettered += 1
            await self._dlq.send(record, exc.reason)
            return
        except Exception as exc:  # a record no decoder anticipated: still not fatal
            self.dead_lettered += 1
            _log.exception("bus.decode_crashed")
            await self._dlq.send(record, f"cannot decode: {type(exc).__name__}: {exc}")
            return
        event = decoded.event
        structlog.contextvars.bind_contextvars(
            # not ``event``: structlog keeps the log message under that key
            event_id=decoded.id,
            event_type=event.type,
            run_id=event.run_id,
        )
        if (step := event.subject) is not None:
            structlog.contextvars.bind_contextvars(step=step)
        handler = self._sub.handlers.get(type(event))
        if handler is None:
            self.dead_lettered += 1
            await self._dlq.send(
                record, f"consumer group {self._sub.group!r} does not handle {event.type!r}"
            )
            return
        try:
            async for attempt in retrying(
                on=is_transient,
                attempts=self._sub.retry_attempts,
                seconds=self._sub.retry_seconds,
                what=f"handler for {event.type}",
            ):
                with attempt:
                    await handler(event, decoded)
            self.handled += 1
        except AlreadyProcessed:
            _log.debug("bus.duplicate_skipped")
        except Exception as exc:
            self.dead_lettered += 1
            _log.exception("bus.handler_failed")
            await self._dlq.send(record, f"{type(exc).__name__}: {exc}")
