"""`headrace events tail` against the real broker: it follows every partition of the topic."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts import events as ev
from contracts.envelope import encode
from contracts.topics import Topics
from headrace.events_tail import TopicMissing, tail


async def test_tail_follows_every_partition(broker: str, topic_prefix: str) -> None:
    """Events on partitions other than 0 are shown, although the tail's consumer has just
    started and has no metadata for the topic yet."""
    topic = Topics(topic_prefix).public
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=broker)
    await producer.start()
    try:
        for partition in (1, 3):
            msg = encode(ev.RunCompleted(run_id=f"run-p{partition}", experiment="e"), source="/t")
            await producer.send_and_wait(
                topic, msg.value, key=msg.key, headers=msg.headers, partition=partition
            )
    finally:
        await producer.stop()
    lines: list[str] = []
    seen = asyncio.Event()

    def emit(line: str) -> None:
        lines.append(line)
        if len(lines) == 2:
            seen.set()

    task = asyncio.create_task(tail(broker, topic_prefix, None, True, emit))
    try:
        await asyncio.wait_for(seen.wait(), timeout=20)
    finally:
        task.cancel()
    assert sorted(line.split()[1] for line in lines) == ["run-p1", "run-p3"]


async def test_tail_of_a_missing_topic_says_so(broker: str, topic_prefix: str) -> None:
    """With no such topic the tail stops with an error naming it, instead of waiting forever."""
    with pytest.raises(TopicMissing, match="does not exist"):
        await tail(broker, topic_prefix + "none.", None, True, lambda _: None)
