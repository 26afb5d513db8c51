"""Follow the public event topic: what ``headrace events tail`` prints.

It reads the topic's partitions directly (no consumer group), so it starts at once and never
disturbs other subscribers' offsets.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.envelope import EnvelopeError, decode
from contracts.topics import Topics

__all__ = ["TopicMissing", "format_event", "tail", "topic_partitions"]


def format_event(type_: str, data: dict[str, object]) -> str:
    """One line per event: its short type, run, step and what matters about it."""
    short = type_.removeprefix("headrace.").removesuffix(".v1")
    details = {k: v for k, v in data.items() if k not in ("run_id", "step", "attempt")}
    step = f" {data['step']}#{data.get('attempt', 1)}" if "step" in data else ""
    text = " ".join(f"{k}={v}" for k, v in details.items() if v not in (None, [], ""))
    return f"{short:<18} {data['run_id']}{step} {text}"[:400]


class TopicMissing(RuntimeError):
    """The events topic does not exist: no stack with this prefix ever started."""


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of ``topic``, fetching the broker's metadata first.

    Why fetch: a consumer that has just started may not have the topic's metadata yet, and
    guessing "partition 0" follows an eighth of the events of a topic with eight partitions.
    """
    parts = consumer.partitions_for_topic(topic)
    if parts is None:
        await consumer.topics()  # forces a metadata request for every topic
        parts = consumer.partitions_for_topic(topic)
    if not parts:
        raise TopicMissing(
            f"topic {topic!r} does not exist: start the stack (headrace up) or check the prefix"
        )
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def tail(
    bootstrap: str,
    prefix: str,
    run_id: str | None,
    from_beginning: bool,
    emit: Callable[[str], None],
) -> None:
    topic = Topics(prefix).public
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100
    )
    await consumer.start()
    try:
        tps = await topic_partitions(consumer, topic)
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        async for record in consumer:
            try:
                decoded = decode(record.key, record.value, record.headers or [])
            except EnvelopeError as exc:
                emit(f"(undecodable record at offset {record.offset}: {exc.reason})")
                continue
            event = decoded.event
            if run_id is None or event.run_id == run_id:
                emit(format_event(event.type, event.model_dump(mode="json")))
    finally:
        await consumer.stop()
