"""The physical floor: the broker's produce-to-consume round trip and one PostgreSQL commit."""

from __future__ import annotations

import statistics
import time
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

__all__ = ["broker_round_trip_ms", "commit_ms"]


async def broker_round_trip_ms(bootstrap: str, samples: int = 200) -> float:
    """Median of send_and_wait + getone on an assigned partition (no group)."""
    topic = f"bench.floor.{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(topic, b"warm", partition=0)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_end(tp)
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            await producer.send_and_wait(topic, b"x" * 512, partition=0)
            await consumer.getone()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    finally:
        await consumer.stop()
        await producer.stop()


async def commit_ms(database_url: str, samples: int = 200) -> float:
    """Median time of a one-row INSERT transaction, commit included.

    A regular table (not TEMP, which skips the write-ahead log) so the commit costs what the
    services' commits cost.
    """
    table = f"bench_floor_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE TABLE {table} (id bigserial, v text)")
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {table} (v) VALUES ($1)", "x")
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()
