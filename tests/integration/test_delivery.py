"""The delivery mechanism on the real broker and database: outbox, inbox, relay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from contracts import events as ev
from contracts.envelope import DecodedEvent, decode, encode
from contracts.limits import MAX_EVENT_BYTES
from contracts.topics import Topics
from services.runtime.bus import Producer, ensure_topics
from services.runtime.db import create_pool
from services.runtime.errors import AlreadyProcessed, EventTooLarge
from services.runtime.outbox import Delivery, Outbox
from services.runtime.settings import RuntimeSettings
from tests.integration.kafka_tools import read_all


@pytest.fixture
async def delivery(runtime_settings: RuntimeSettings) -> AsyncIterator[Delivery]:
    await ensure_topics(runtime_settings, [])
    pool = await create_pool(runtime_settings.database_url)
    producer = Producer(runtime_settings.kafka_bootstrap, client_id="test")
    await producer.start()
    outbox = Outbox(pool, producer, Topics(runtime_settings.topic_prefix), source="/test")
    try:
        yield Delivery(pool, outbox, consumer="test-group")
    finally:
        await producer.stop()
        await pool.close()


def _incoming(event_id: str) -> DecodedEvent:
    return DecodedEvent(
        id=event_id, source="/t", event=ev.SnapshotRequested(run_id="r1", digest="d")
    )


def _ready() -> ev.SnapshotReady:
    return ev.SnapshotReady(run_id="r1", digest="d", files=1, bytes=2)


async def _results(settings: RuntimeSettings) -> list[str]:
    records = await read_all(settings.kafka_bootstrap, Topics(settings.topic_prefix).results)
    return [decode(k, v, list(h.items())).event.type for k, v, h in records]


async def test_emitted_events_publish_after_commit_and_leave_no_outbox_rows(
    delivery: Delivery, runtime_settings: RuntimeSettings
) -> None:
    """Events emitted in a committed transaction reach the topic; the outbox is then emptied."""
    async with delivery.transaction(_incoming("e1")) as tx:
        tx.emit(_ready())
    await delivery.outbox.delete_published()
    assert await _results(runtime_settings) == ["headrace.snapshot.ready.v1"]
    assert await delivery.pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_redelivered_event_has_no_second_effect(delivery: Delivery) -> None:
    """The second transaction for one event id raises AlreadyProcessed and changes nothing."""
    async with delivery.transaction(_incoming("e2")) as tx:
        tx.emit(_ready())
    with pytest.raises(AlreadyProcessed):
        async with delivery.transaction(_incoming("e2")) as tx:
            tx.emit(_ready())
    assert await delivery.seen(_incoming("e2"))
    assert await delivery.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = 'e2'") == 1


async def test_rolled_back_handler_emits_nothing_and_can_be_retried(delivery: Delivery) -> None:
    """A handler that raises leaves no inbox entry and no outbox row, so a retry runs it."""

    async def failing_handler() -> None:
        async with delivery.transaction(_incoming("e3")) as tx:
            tx.emit(_ready())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await failing_handler()
    assert await delivery.pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert not await delivery.seen(_incoming("e3"))


async def test_relay_publishes_rows_left_behind_by_a_crash(
    delivery: Delivery, runtime_settings: RuntimeSettings
) -> None:
    """Rows committed but never published (process died) are published by the relay."""
    pool: asyncpg.Pool = delivery.pool
    async with pool.acquire() as conn, conn.transaction():
        await delivery.outbox.stage(conn, [_ready(), _ready()])  # commit, then "crash"
    assert await _results(runtime_settings) == []
    assert await delivery.outbox.relay_once(min_age_seconds=0) == 2
    assert await _results(runtime_settings) == ["headrace.snapshot.ready.v1"] * 2
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_outbox_keeps_cloudevent_headers_through_the_table(
    delivery: Delivery, runtime_settings: RuntimeSettings
) -> None:
    """Relayed records carry the same CloudEvents headers as directly published ones."""
    msg = encode(_ready(), source="/x")
    async with delivery.pool.acquire() as conn, conn.transaction():
        await delivery.outbox.stage(conn, [_ready()])
    await delivery.outbox.relay_once(min_age_seconds=0)
    records = await read_all(
        runtime_settings.kafka_bootstrap, Topics(runtime_settings.topic_prefix).results
    )
    headers = records[0][2]
    assert set(dict(msg.headers)) <= set(headers)
    assert headers["ce_source"] == b"/test"


async def _unsendable_row(pool: asyncpg.Pool, run_id: str, *, source: str = "/test") -> None:
    """A committed outbox row larger than any broker accepts (as an older release, or a broker
    with a lower limit than ours, could leave behind), for a Queued run."""
    await pool.execute(
        "INSERT INTO runs (run_id, experiment, status, spec) VALUES ($1, 'e', 'Queued', '{}')",
        run_id,
    )
    msg = encode(ev.RunCancelRequested(run_id=run_id), source=source)
    await pool.execute(
        "INSERT INTO outbox (topic, key, value, headers, source, created_at)"
        " VALUES ('t.runs.requested', $1, $2, $3, $4, now() - interval '1 minute')",
        msg.key,
        b"x" * (2 * 1024 * 1024),
        [[k, v.decode()] for k, v in msg.headers],
        source,
    )


async def test_relay_moves_an_unsendable_row_aside_and_fails_its_run(
    delivery: Delivery, runtime_settings: RuntimeSettings
) -> None:
    """A row the broker will never accept is moved to ``outbox_rejected`` with the reason, its
    run fails with that reason, and the relay is not stuck on it: the rows behind it go out."""
    pool: asyncpg.Pool = delivery.pool
    await _unsendable_row(pool, "big-run")
    async with pool.acquire() as conn, conn.transaction():
        await delivery.outbox.stage(conn, [_ready()])
    assert await delivery.outbox.relay_once(min_age_seconds=0) == 2
    await delivery.outbox.delete_published()  # the RunFailed it sent, as the cleaner does
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    rejected = await pool.fetchrow("SELECT event_type, size, reason FROM outbox_rejected")
    assert rejected is not None
    assert rejected["event_type"] == ev.RunCancelRequested.type
    assert rejected["size"] == 2 * 1024 * 1024
    run = await pool.fetchrow("SELECT status, error FROM runs WHERE run_id = 'big-run'")
    assert run is not None
    assert run["status"] == "Failed"
    assert "could not be sent to the broker" in run["error"]
    assert await _results(runtime_settings) == ["headrace.snapshot.ready.v1"]
    public = await read_all(
        runtime_settings.kafka_bootstrap, Topics(runtime_settings.topic_prefix).public
    )
    assert [decode(k, v, list(h.items())).event.type for k, v, h in public] == [ev.RunFailed.type]
    assert await delivery.outbox.relay_once(min_age_seconds=0) == 0


async def test_relay_sends_only_its_own_service_rows(delivery: Delivery) -> None:
    """Another service's rows are left to that service's relay (no contention on one table)."""
    pool: asyncpg.Pool = delivery.pool
    await _unsendable_row(pool, "other-run", source="/scheduler")
    assert await delivery.outbox.relay_once(min_age_seconds=0) == 0
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_staging_an_oversize_event_is_refused(delivery: Delivery) -> None:
    """An event over the limit is refused when staged, so the transaction stores nothing."""
    big = ev.RunFailed(run_id="r", experiment="e", reason="x" * (MAX_EVENT_BYTES + 1))
    with pytest.raises(EventTooLarge, match="limit"):
        async with delivery.transaction(_incoming("e-big")) as tx:
            tx.emit(big)
    assert await delivery.pool.fetchval("SELECT count(*) FROM outbox") == 0
    assert not await delivery.seen(_incoming("e-big"))
