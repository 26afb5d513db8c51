"""Transactional outbox and processed-event inbox.

A handler changes state, records the id of the event it consumed (inbox) and stages the events
it emits (outbox) in one PostgreSQL transaction. After the commit the staged rows are published
at once (the fast path) and deleted in the background; a relay re-publishes rows that stayed
behind because the process died between commit and publish, or the broker was away.

Two rules keep one bad event from clogging the table for everyone: an event larger than
``MAX_EVENT_BYTES`` is refused when staged (``EventTooLarge``: the handler's transaction rolls
back, the API answers 413), and a row the broker refuses for good is moved to
``outbox_rejected`` with the reason and its run is failed, instead of being retried forever.
Each service relays only the rows it staged (the ``source`` column).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from contracts import events as ev
from contracts.envelope import DecodedEvent, Message, encode
from contracts.events import Event
from contracts.limits import MAX_EVENT_BYTES, too_large_reason
from contracts.status import RunStatus, StepStatus
from contracts.topics import Topics
from services.runtime.bus import EventSender
from services.runtime.errors import AlreadyProcessed, EventTooLarge
from services.runtime.signing import sign
from services.runtime.states import StepPhase

__all__ = ["Delivery", "Outbox", "Tx"]

_log = structlog.get_logger("headrace.outbox")

_INSERT = """
INSERT INTO outbox (topic, key, value, headers, source)
SELECT t, k, v, h::jsonb, $5
FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::text[]) AS u(t, k, v, h)
RETURNING id
"""

#: errors after which the broker will never accept the record, however often it is sent
_UNSENDABLE = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    InvalidTopicError,
)


@dataclass
class Tx:
    """A handler's transaction: its connection and the events it will emit on commit."""

    conn: Any
    events: list[Event] = field(default_factory=list)

    def emit(self, *events: Event) -> None:
        """Emit on commit; nothing is published if the transaction rolls back."""
        self.events.extend(events)


class Outbox:
    """Stages events in the ``outbox`` table and publishes them after commit."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: EventSender,
        topics: Topics,
        source: str,
        *,
        signing_key: bytes | None = None,
    ) -> None:
        self._signing_key = signing_key
        self._pool = pool
        self._producer = producer
        self._topics = topics
        self._source = source
        self._published: list[int] = []
        self._wake = asyncio.Event()
        self.relay_age_seconds = 3.0

    async def stage(self, conn: Any, events: Sequence[Event]) -> list[tuple[int, str, Message]]:
        """Insert ``events`` into the outbox inside the caller's transaction."""
        if not events:
            return []
        encoded = [(self._topics.for_event(e), encode(e, source=self._source)) for e in events]
        for event, (_, msg) in zip(events, encoded, strict=True):
            if len(msg.value) > MAX_EVENT_BYTES:
                raise EventTooLarge(too_large_reason(event.type, len(msg.value)))
        if self._signing_key is not None:
            key = self._signing_key
            encoded = [(t, sign(m, key)) for t, m in encoded]
        ids = await conn.fetch(
            _INSERT,
            [t for t, _ in encoded],
            [m.key for _, m in encoded],
            [m.value for _, m in encoded],
            [json.dumps([[k, v.decode()] for k, v in m.headers]) for _, m in encoded],
            self._source,
        )
        return [(r["id"], t, m) for r, (t, m) in zip(ids, encoded, strict=True)]

    async def publish(self, staged: Sequence[tuple[int, str, Message]]) -> None:
        """Publish committed rows now; the relay covers us if this fails."""
        if not staged:
            return
        try:
            await self._producer.send_many([(t, m) for _, t, m in staged])
        except Exception as exc:
            _log.warning("outbox.publish_deferred", rows=len(staged), error=str(exc))
            return
        self._published.extend(i for i, _, _ in staged)
        self._wake.set()

    async def run_cleaner(self) -> None:
        """Delete published rows in batches, off the critical path."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.05)
            await self.delete_published()

    async def delete_published(self) -> None:
        ids, self._published = self._published, []
        if not ids:
            return
        try:
            await self._pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self._published.extend(ids)
            _log.warning("outbox.delete_failed", error=str(exc))

    async def relay_once(self, *, min_age_seconds: float | None = None) -> int:
        """Publish and delete this service's outbox rows older than ``min_age_seconds``.

        Returns how many rows were handled. A row the broker refuses for good is moved aside
        (``_reject``) rather than left to block the ones behind it.
        """
        age = self.relay_age_seconds if min_age_seconds is None else min_age_seconds
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, topic, key, value, headers, created_at FROM outbox"
                " WHERE source = ANY($2::text[])"
                " AND created_at < now() - make_interval(secs => $1)"
                " ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED",
                age,
                [self._source, ""],
            )
            if not rows:
                return 0
            items = [(r["topic"], _message(r)) for r in rows]
            rejected: list[Event] = []
            try:
                await self._producer.send_many(items)
            except _UNSENDABLE:
                # At least one row can never be sent: find which, one at a time. Rows sent
                # twice this way are absorbed by the consumers' inbox.
                for row, item in zip(rows, items, strict=True):
                    try:
                        await self._producer.send_many([item])
                    except _UNSENDABLE as exc:
                        rejected.extend(await self._reject(conn, row, exc))
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
            staged = await self.stage(conn, rejected)
        await self.publish(staged)
        _log.info("outbox.relayed", rows=len(rows))
        return len(rows)

    async def _reject(self, conn: Any, row: Any, exc: BaseException) -> list[Event]:
        """Move an unsendable row aside with the reason; fail the run it belongs to.

        Returns the events that say so (a ``RunFailed`` when a run was still active).
        """
        headers = dict(row["headers"])
        event_type = headers.get("ce_type")
        reason = (
            f"{event_type or 'an event'} of {len(row['value']):,} bytes could not be sent to "
            f"the broker ({type(exc).__name__}: {exc}); headrace accepts events up to "
            f"{MAX_EVENT_BYTES:,} bytes"
        )
        await conn.execute(
            "INSERT INTO outbox_rejected (id, source, topic, key, event_type, size, reason,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            row["id"],
            self._source,
            row["topic"],
            row["key"],
            event_type,
            len(row["value"]),
            reason,
            row["created_at"],
        )
        _log.error(
            "outbox.rejected", row=row["id"], topic=row["topic"], type=event_type, reason=reason
        )
        run_id = (row["key"] or b"").decode("utf-8", "replace")
        experiment = await conn.fetchval(
            "UPDATE runs SET status = $3, error = $2, finished_at = now()"
            " WHERE run_id = $1 AND status = ANY($4::text[]) RETURNING experiment",
            run_id,
            reason,
            RunStatus.FAILED,
            list(RunStatus.active()),
        )
        if experiment is None:
            return []
        await conn.execute(
            "UPDATE steps SET status = $2, phase = $3, finished_at = now()"
            " WHERE run_id = $1 AND phase = ANY($4::text[])",
            run_id,
            StepStatus.SKIPPED,
            StepPhase.DONE,
            StepPhase.not_started(),
        )
        return [ev.RunFailed(run_id=run_id, experiment=experiment, reason=reason)]

    async def run_relay(self, interval: float = 1.0) -> None:
        """Re-publish rows left behind, forever (until cancelled)."""
        while True:
            try:
                while await self.relay_once() == 500:
                    pass
            except Exception as exc:  # keep relaying whatever happened this round
                _log.warning("outbox.relay_failed", error=str(exc))
            await asyncio.sleep(interval)


def _message(row: Any) -> Message:
    return Message(
        key=row["key"], value=row["value"], headers=[(k, v.encode()) for k, v in row["headers"]]
    )


class Delivery:
    """Runs handler transactions with inbox de-duplication and outbox emission."""

    def __init__(self, pool: asyncpg.Pool, outbox: Outbox, consumer: str) -> None:
        self.pool = pool
        self.outbox = outbox
        self.consumer = consumer

    @contextlib.asynccontextmanager
    async def transaction(self, decoded: DecodedEvent | None) -> AsyncIterator[Tx]:
        """One transaction: inbox claim for ``decoded`` (if any), the handler's work, outbox.

        Raises ``AlreadyProcessed`` when the inbox holds the event id already.
        """
        async with self.pool.acquire() as conn, conn.transaction():
            if decoded is not None:
                claimed = await conn.fetchval(
                    "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING RETURNING true",
                    self.consumer,
                    decoded.id,
                )
                if not claimed:
                    raise AlreadyProcessed(decoded.id)
            tx = Tx(conn)
            yield tx
            staged = await self.outbox.stage(conn, tx.events)
        await self.outbox.publish(staged)

    async def seen(self, decoded: DecodedEvent) -> bool:
        """Whether the inbox already holds this event (checked before long work)."""
        found = await self.pool.fetchval(
            "SELECT true FROM inbox WHERE consumer = $1 AND event_id = $2",
            self.consumer,
            decoded.id,
        )
        return bool(found)
