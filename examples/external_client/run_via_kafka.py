"""Start a headrace run from any system, with Kafka alone, and follow it to its end.

Uses only aiokafka and JSON: the event contract is CloudEvents in Kafka binary mode (see
docs/events.md and contracts/schemas/). Usage::

    python examples/external_client/run_via_kafka.py BOOTSTRAP SNAPSHOT_DIGEST SCRIPT

SNAPSHOT_DIGEST names an uploaded source snapshot holding SCRIPT (the SDK uploads one at every
submit; `headrace snapshot preview` shows a directory's files).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

PREFIX = "headrace."
TERMINAL = {"headrace.run.completed.v1", "headrace.run.failed.v1", "headrace.run.canceled.v1"}


def run_requested(run_id: str, snapshot: str, script: str) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The RunRequested event: JSON data plus CloudEvents headers."""
    data = {
        "run_id": run_id,
        "experiment": "from-kafka",
        "pipeline": {"steps": [{"name": "hello", "script_name": script, "snapshot": snapshot}]},
        "parameters": {},
    }
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/examples/external-client"),
        ("ce_type", b"headrace.run.requested.v1"),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
    ]
    return json.dumps(data).encode(), headers


async def start_and_follow(
    bootstrap: str, snapshot: str, script: str, prefix: str = PREFIX
) -> list[str]:
    """Emit a run request, then print the run's public events until it ends; return them."""
    run_id = str(uuid.uuid4())
    events_topic = f"{prefix}events"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    seen: list[str] = []
    try:
        parts = consumer.partitions_for_topic(events_topic) or {0}
        tps = [TopicPartition(events_topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        value, headers = run_requested(run_id, snapshot, script)
        await producer.send_and_wait(
            f"{prefix}runs.requested", value, key=run_id.encode(), headers=headers
        )
        async for record in consumer:
            if record.key != run_id.encode():
                continue
            ce_type = dict(record.headers)["ce_type"].decode()
            seen.append(ce_type)
            print(ce_type, json.loads(record.value).get("step", ""))
            if ce_type in TERMINAL:
                return seen
    finally:
        await producer.stop()
        await consumer.stop()
    return seen


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(start_and_follow(*sys.argv[1:]))
