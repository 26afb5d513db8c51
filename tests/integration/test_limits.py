"""No single request or record can stop headrace: size limits at the edge, unsendable outbox
rows moved aside, poison records dead-lettered by reference, on the real broker and database."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from contracts.limits import MAX_EVENT_BYTES
from contracts.topics import Topics
from tests.helpers import eventually
from tests.integration.conftest import Stack
from tests.integration.kafka_tools import read_all

OK = "print('ok')\n"


async def _count(conn: asyncpg.Connection, table: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def test_oversize_run_request_is_refused_with_nothing_stored(stack: Stack) -> None:
    """A run whose request cannot fit in one event (a 2 MB argument) is a 413 naming the
    limit, and no run and no outbox row are written."""
    snap = await stack.upload_snapshot({"ok.py": OK})
    steps = [
        {
            "name": "s",
            "script_name": "ok.py",
            "snapshot": snap,
            "arguments": [{"kind": "literal", "value": "x" * 2_000_000}],
        }
    ]
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        r = await stack.submit({"steps": steps})
        assert r.status_code == 413, r.text
        assert f"{MAX_EVENT_BYTES:,} bytes" in r.json()["detail"]
        assert await _count(conn, "runs") == 0
        assert await _count(conn, "outbox") == 0
        # and the stack goes on: a normal run right after completes
        steps[0]["arguments"] = []
        rid = (await stack.submit({"steps": steps})).json()["run_id"]
        assert (await stack.wait_run(rid))["status"] == "Completed"
    finally:
        await conn.close()


async def test_poison_record_is_dead_lettered_by_reference(stack: Stack) -> None:
    """A 5 MB malformed record on the run-request topic is dead-lettered as a reference
    (topic, partition, offset, size), and a normal run submitted right after completes."""
    topics = Topics(stack.settings.topic_prefix)
    boot = stack.settings.kafka_bootstrap
    producer = AIOKafkaProducer(bootstrap_servers=boot, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        poison = b"{" + b"x" * (5 * 1024 * 1024)
        sent = await producer.send_and_wait(
            topics.run_requests,
            poison,
            key=b"poison",
            headers=[
                ("ce_id", b"p1"),
                ("ce_type", b"headrace.run.requested.v1"),
                ("ce_specversion", b"1.0"),
                ("ce_source", b"/poison"),
                ("content-type", b"application/json"),
            ],
        )
    finally:
        await producer.stop()
    snap = await stack.upload_snapshot({"ok.py": OK})
    rid = await stack.submit({"steps": [{"name": "s", "script_name": "ok.py", "snapshot": snap}]})
    assert (await stack.wait_run(rid.json()["run_id"]))["status"] == "Completed"

    dead: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []

    async def dead_lettered() -> bool:
        dead[:] = await read_all(boot, topics.deadletter)
        return len(dead) >= 1

    await eventually(dead_lettered, timeout=20)
    _, value, headers = dead[0]
    ref: dict[str, Any] = json.loads(value)
    assert headers["x-headrace-dlq-reference"] == b"1"
    assert (ref["topic"], ref["partition"], ref["offset"]) == (
        topics.run_requests,
        sent.partition,
        sent.offset,
    )
    assert ref["size"] > 5 * 1024 * 1024
    assert "not a JSON object" in ref["reason"]
