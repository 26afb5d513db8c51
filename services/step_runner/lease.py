"""Keep a claimed attempt's lease alive from the claim until its result is recorded.

Why a task of its own rather than a beat of the process supervisor: an attempt spends time
before its process exists (the snapshot copied, the environment unpacked from the store,
minutes for a large one on a loaded machine). A lease renewed only once the process runs
lapses during that preparation: the watchdog fences the attempt and dispatches it again, and
the step's own guard (``boot``) reads a stale lease file and kills the script at its first
line. Renewing from the claim on means a lease lapses only when the runner itself stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import asyncpg
import structlog

from services.runtime.scratch import AttemptDir
from services.runtime.states import AttemptStatus
from services.step_runner import store

__all__ = ["Lease", "kept_lease", "write_lease_file"]

_log = structlog.get_logger("headrace.step_runner")


def write_lease_file(adir: AttemptDir, seconds: float) -> None:
    """Tell the step process until when its lease holds (see ``boot``)."""
    tmp = adir.lease.with_suffix(".tmp")
    tmp.write_text(f"{time.time() + seconds:.3f}")
    tmp.replace(adir.lease)


class Lease:
    """One attempt's lease as the runner sees it: set ``pid`` once the process runs; ``lost``
    is set (with ``status`` saying why) when the scheduler took the attempt back."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.status: str | None = None
        self.lost = asyncio.Event()


@contextlib.asynccontextmanager
async def kept_lease(
    pool: asyncpg.Pool,
    adir: AttemptDir,
    key: tuple[str, str, int],
    seconds: float,
    every: float,
) -> AsyncIterator[Lease]:
    """Renew the lease of attempt ``key`` (run, step, attempt) every ``every`` seconds, in
    the database and in the attempt's lease file, until the block exits."""
    lease = Lease()
    write_lease_file(adir, seconds)

    async def renew() -> None:
        while not lease.lost.is_set():
            await asyncio.sleep(every)
            try:
                status = await store.heartbeat(pool, *key, seconds, lease.pid)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # the lease file keeps its old time: the step stops if this goes on too long
                _log.warning("step_runner.heartbeat_failed", error=str(exc))
                continue
            if status == AttemptStatus.RUNNING:
                write_lease_file(adir, seconds)
            else:
                lease.status = status
                lease.lost.set()

    task = asyncio.create_task(renew(), name=f"lease {key}")
    try:
        yield lease
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
