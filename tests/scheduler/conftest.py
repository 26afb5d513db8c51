"""The scheduler harness on a fresh database per test (no broker: see ``tests/harness.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.topics import Topics
from services.runtime.bootstrap import bootstrap_workspace
from services.runtime.db import create_pool
from services.scheduler.settings import SchedulerSettings
from tests.harness import SchedulerHarness


@pytest.fixture
async def harness(database_url: str, tmp_path: Path) -> AsyncIterator[SchedulerHarness]:
    """Scheduler handlers and watchdog on a migrated, bootstrapped database of their own."""
    settings = SchedulerSettings(
        database_url=database_url,
        home=tmp_path / "home",
        topic_prefix="t.",
        redeliver_after_seconds=30,
    )
    await bootstrap_workspace(settings)
    pool = await create_pool(database_url, max_size=2)
    try:
        yield SchedulerHarness.create(pool, settings, Topics(settings.topic_prefix))
    finally:
        await pool.close()
