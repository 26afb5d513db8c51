"""The scheduler's watchdog: expired leases and commands lost with the broker.

The database is the source of truth, so whatever the broker lost (it may restart empty) is
found again here: an attempt whose runner stopped renewing its lease is fenced and retried,
and a run, prerequisite, step or upload that shows no progress for a while has its command
sent again. One scheduler instance at a time sweeps (an advisory lock), each item in its own
transaction.
"""

from __future__ import annotations

import asyncio

import structlog

from services.runtime.errors import EventTooLarge
from services.runtime.outbox import Delivery
from services.scheduler import store
from services.scheduler.handlers import SchedulerHandlers
from services.scheduler.settings import SchedulerSettings

__all__ = ["Watchdog"]

_log = structlog.get_logger("headrace.scheduler.watchdog")
_SWEEP_LOCK = 0x68720001


class Watchdog:
    def __init__(
        self, settings: SchedulerSettings, handlers: SchedulerHandlers, delivery: Delivery
    ) -> None:
        self.settings = settings
        self.handlers = handlers
        self.delivery = delivery

    async def sweep(self) -> int:
        """One pass; returns how many items were acted on."""
        acted = 0
        for row in await store.expired_leases(self.delivery.pool):
            why = "handed back" if row["status"] == "released" else "lease expired"
            async with self.delivery.transaction(None) as tx:
                await self.handlers.on_lease_lost(
                    tx, row["run_id"], row["step"], row["attempt"], why
                )
            acted += 1
        async with self.delivery.transaction(None) as tx:
            # Steps parked behind an identical step whose run was canceled or failed.
            await self.handlers.wake_runs(tx, await store.wake_waiters(tx.conn))
        async with self.delivery.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _SWEEP_LOCK):
                return acted
            items = await store.stalled(conn, self.settings.redeliver_after_seconds)
        for item in items:
            try:
                async with self.delivery.transaction(None) as tx:
                    await self.handlers.redeliver(tx, item)
            except EventTooLarge as exc:
                # It could never be sent: end the run with the reason rather than try forever.
                async with self.delivery.transaction(None) as tx:
                    await self.handlers.fail_run_by_id(tx, item.run_id, str(exc))
        return acted + len(items)

    async def run(self) -> None:
        """Sweep forever; a failed sweep is logged and the next one tries again."""
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # the database may be restarting: try again later
                _log.warning("watchdog.sweep_failed", error=str(exc))
            await asyncio.sleep(self.settings.watchdog_seconds)
