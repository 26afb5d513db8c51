"""Chaos for schedules: two schedule firers, each its own process on the real clock, are killed
with SIGKILL again and again while forty schedules come due; every due time still fires
exactly once (one firing row, one queued run, one run id on the run-request topic)."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from contracts.envelope import decode
from headrace.stack.layout import Layout
from headrace.stack.process import Child
from headrace.stack.supervisor import service_env
from services.runtime.bus import ensure_topics
from services.runtime.settings import RuntimeSettings
from tests.helpers import eventually
from tests.integration.kafka_tools import read_all

pytestmark = pytest.mark.chaos

SCHEDULES = 40
SPREAD = 0.3  # seconds between two schedules' due times
SPEC = {
    "parameters": [],
    "steps": [{"name": "s", "script_name": "s.py", "snapshot": "sha256:" + "0" * 64}],
}


async def _seed(conn: asyncpg.Connection, first_due: datetime) -> list[datetime]:
    """A published pipeline and SCHEDULES hourly schedules due SPREAD seconds apart."""
    pid = str(uuid.uuid4())
    await conn.execute(
        "INSERT INTO published_pipelines (id, name, spec) VALUES ($1, 'p', $2)", pid, SPEC
    )
    dues = [first_due + timedelta(seconds=SPREAD * i) for i in range(SCHEDULES)]
    for i, due in enumerate(dues):
        recurrence = {"frequency": "Hour", "interval": 1, "start_time": due.isoformat()}
        await conn.execute(
            "INSERT INTO schedules (id, name, pipeline_id, experiment, recurrence, next_due)"
            " VALUES ($1, $2, $3, 'chaos', $4, $5)",
            f"s{i:02d}",
            f"s{i:02d}",
            pid,
            recurrence,
            due,
        )
    return dues


async def test_killed_firers_lose_no_firing_and_duplicate_none(
    runtime_settings: RuntimeSettings, tmp_path: Path
) -> None:
    """SIGKILLs at random moments while schedules are due: each due time fires once."""
    s = runtime_settings
    await ensure_topics(s, ["local"])
    conn = await asyncpg.connect(s.database_url)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    layout = Layout(s.home)
    env = service_env(
        layout,
        s.kafka_bootstrap,
        s.database_url,
        s.topic_prefix,
        {"HEADRACE_TICK_SECONDS": "0.05", "HEADRACE_LOG_LEVEL": "info"},
    )
    firers = [
        Child(
            f"firer-{i}",
            [sys.executable, "-m", "headrace", "serve", "schedule_firer"],
            tmp_path / f"firer-{i}.log",
            env=env,
        )
        for i in range(2)
    ]
    for f in firers:
        f.start()
    kills = 0
    try:
        dues = await _seed(conn, datetime.now(UTC) + timedelta(seconds=3))
        rng = random.Random(7)
        while datetime.now(UTC) < dues[-1] + timedelta(seconds=1):
            await asyncio.sleep(rng.uniform(0.2, 0.9))
            victim = rng.choice(firers)
            if victim.alive():
                victim.send(signal.SIGKILL)
                await asyncio.to_thread(victim.proc.wait)  # type: ignore[union-attr]
                kills += 1
            victim.start()

        async def all_fired() -> bool:
            return bool(await conn.fetchval("SELECT count(*) FROM schedule_firings") >= SCHEDULES)

        await eventually(all_fired, timeout=60)
        rows = await conn.fetch(
            "SELECT schedule_id, due_at, run_id FROM schedule_firings ORDER BY schedule_id"
        )
        assert [(r["schedule_id"], r["due_at"]) for r in rows] == [
            (f"s{i:02d}", due) for i, due in enumerate(dues)
        ]
        assert all(r["run_id"] for r in rows)
        runs = await conn.fetch("SELECT run_id, properties FROM runs")
        assert sorted(r["run_id"] for r in runs) == sorted(r["run_id"] for r in rows)
        run_ids: set[str] = set()

        async def all_published() -> bool:
            found = await read_all(s.kafka_bootstrap, f"{s.topic_prefix}runs.requested")
            run_ids.update(decode(k, v, list(h.items())).event.run_id for k, v, h in found)
            return len(run_ids) >= SCHEDULES

        await eventually(all_published, timeout=30)
        assert run_ids == {r["run_id"] for r in rows}
        assert kills >= 10, f"only {kills} kills: the test did not exercise what it claims"
        print(f"\nschedule chaos: {kills} SIGKILLs, {SCHEDULES} due times, {len(rows)} firings")
    finally:
        for f in firers:
            await asyncio.to_thread(f.stop, 5)
        await conn.close()
