"""Start a headrace run from any system, with Kafka alone, and follow it to its end.

Uses only aiokafka and JSON: the event contract is CloudEvents in Kafka binary mode (see
docs/events.md, contracts/asyncapi.yaml and contracts/schemas/). Usage::

    python examples/external_client/run_via_kafka.py BOOTSTRAP published PIPELINE_ID [k=v ...]
    python examples/external_client/run_via_kafka.py BOOTSTRAP endpoint NAME[@VERSION] [k=v ...]
    python examples/external_client/run_via_kafka.py BOOTSTRAP script SNAPSHOT_DIGEST SCRIPT

``k=v`` are parameter assignments (values parsed as JSON when they parse, else strings).
``script`` runs one script of an uploaded source snapshot (the SDK uploads one at every submit).
Set HEADRACE_TOPIC_PREFIX when the deployment uses another prefix than "headrace.".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

PREFIX = os.environ.get("HEADRACE_TOPIC_PREFIX", "headrace.")
TERMINAL = {"headrace.run.completed.v1", "headrace.run.failed.v1", "headrace.run.canceled.v1"}


def run_requested(
    run_id: str, target: dict[str, Any], parameters: dict[str, Any] | None = None
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The RunRequested event: JSON data plus CloudEvents headers.

    ``target`` names what to run: ``{"pipeline": {...}}``, ``{"published_pipeline_id": ID}``
    or ``{"pipeline_endpoint": NAME, "pipeline_version": "1"}``.
    """
    data = {"run_id": run_id, "experiment": "from-kafka", **target, "parameters": parameters or {}}
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_source", b"/examples/external-client"),
        ("ce_type", b"headrace.run.requested.v1"),
        ("ce_time", datetime.now(UTC).isoformat().encode()),
        ("content-type", b"application/json"),
    ]
    return json.dumps(data).encode(), headers


def script_target(snapshot: str, script: str) -> dict[str, Any]:
    """A one-step pipeline running ``script`` from an uploaded snapshot."""
    return {"pipeline": {"steps": [{"name": "hello", "script_name": script, "snapshot": snapshot}]}}


async def start_and_follow(
    bootstrap: str,
    target: dict[str, Any],
    parameters: dict[str, Any] | None = None,
    prefix: str = PREFIX,
) -> list[tuple[str, dict[str, Any]]]:
    """Emit a run request, then print the run's public events until it ends; return them."""
    run_id = str(uuid.uuid4())
    events_topic = f"{prefix}events"
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    seen: list[tuple[str, dict[str, Any]]] = []
    try:
        # fetch metadata first: a fresh consumer may not know the topic's partitions yet
        await consumer.topics()
        parts = consumer.partitions_for_topic(events_topic)
        if not parts:
            raise SystemExit(f"topic {events_topic} does not exist: is headrace up?")
        tps = [TopicPartition(events_topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        value, headers = run_requested(run_id, target, parameters)
        await producer.send_and_wait(
            f"{prefix}runs.requested", value, key=run_id.encode(), headers=headers
        )
        async for record in consumer:
            if record.key != run_id.encode():
                continue
            ce_type = dict(record.headers)["ce_type"].decode()
            data = json.loads(record.value)
            seen.append((ce_type, data))
            print(run_id, ce_type, data.get("step", ""), flush=True)
            if ce_type in TERMINAL:
                return seen
    finally:
        await producer.stop()
        await consumer.stop()
    return seen


def _assignments(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, _, raw = pair.partition("=")
        try:
            out[name] = json.loads(raw)
        except ValueError:
            out[name] = raw
    return out


def main(argv: list[str]) -> None:
    if len(argv) < 3:
        sys.exit(__doc__)
    bootstrap, kind, ref, *rest = argv
    if kind == "published":
        target: dict[str, Any] = {"published_pipeline_id": ref}
    elif kind == "endpoint":
        name, _, version = ref.partition("@")
        target = {"pipeline_endpoint": name, **({"pipeline_version": version} if version else {})}
    elif kind == "script" and len(rest) == 1:
        target, rest = script_target(ref, rest[0]), []
    else:
        sys.exit(__doc__)
    asyncio.run(start_and_follow(bootstrap, target, _assignments(rest)))


if __name__ == "__main__":
    main(sys.argv[1:])
