"""Schedules against the real broker and database: due times fire once, with a controlled
clock (every firer's ``tick(now)`` is given the time), two firers racing, catch-up after
downtime, disabled schedules and pipelines, and datastore triggers by content."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.envelope import decode
from contracts.spec import DEFAULT_DATASTORE
from services.schedule_firer.service import ScheduleFirerService
from services.schedule_firer.settings import ScheduleFirerSettings
from tests.integration.conftest import Stack
from tests.integration.kafka_tools import read_all

ECHO = "import sys\nprint('word', sys.argv[1])\n"
START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
async def firers(stack: Stack) -> AsyncIterator[list[ScheduleFirerService]]:
    """Two schedule firers on their own pools; their loops look once an hour, so only the
    test's ``tick(now)`` calls fire anything."""
    base = stack.settings.model_dump()
    services = [
        ScheduleFirerService(ScheduleFirerSettings(**base, tick_seconds=3600), instance_id=f"f{i}")
        for i in range(2)
    ]
    await asyncio.gather(*(s.start() for s in services))
    try:
        yield services
    finally:
        await asyncio.gather(*(s.stop(grace=2) for s in services))


async def publish_echo(stack: Stack, default: str = "hello") -> str:
    """Publish a one-step pipeline printing its string parameter ``word``."""
    snap = await stack.upload_snapshot({"echo.py": ECHO})
    spec = {
        "parameters": [{"name": "word", "default": default}],
        "steps": [
            {
                "name": "echo",
                "script_name": "echo.py",
                "snapshot": snap,
                "allow_reuse": False,
                "arguments": [{"kind": "parameter", "name": "word"}],
            }
        ],
    }
    r = await stack.client.post("/api/v1/pipelines", json={"name": "echo", "pipeline": spec})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def create(stack: Stack, **body: Any) -> dict[str, Any]:
    r = await stack.client.post(
        "/api/v1/schedules", json={"name": "nightly", "experiment_name": "sched", **body}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def hourly(start: datetime = START) -> dict[str, Any]:
    return {"frequency": "Hour", "interval": 1, "start_time": start.isoformat()}


async def firings(stack: Stack, schedule_id: str) -> list[dict[str, Any]]:
    r = await stack.client.get(f"/api/v1/schedules/{schedule_id}/firings")
    assert r.status_code == 200, r.text
    return list(r.json())


async def test_a_due_time_fires_once_with_two_firers_racing(
    stack: Stack, firers: list[ScheduleFirerService]
) -> None:
    """Before its due time nothing fires; at it, three racing looks of two firers start one
    run, which runs with the schedule's parameters and says where it came from."""
    pid = await publish_echo(stack)
    sched = await create(
        stack, pipeline_id=pid, recurrence=hourly(), pipeline_parameters={"word": "tick"}
    )
    assert sched["next_due"] == START.isoformat()
    a, b = (f.handlers for f in firers)
    assert await a.tick(START - timedelta(seconds=1)) == 0
    started = await asyncio.gather(a.tick(START), b.tick(START), a.tick(START))
    assert sum(started) == 1
    [fired] = await firings(stack, sched["id"])
    assert fired["due_at"] == START.isoformat()
    run = await stack.wait_run(fired["run_id"])
    assert run["status"] == "Completed"
    assert run["experiment"] == "sched"
    assert run["properties"]["schedule_id"] == sched["id"]
    out = await stack.client.get(f"/api/v1/runs/{fired['run_id']}/steps/echo/logs/stdout")
    assert out.text.strip() == "word tick"
    view = (await stack.client.get(f"/api/v1/schedules/{sched['id']}")).json()
    assert view["next_due"] == (START + timedelta(hours=1)).isoformat()
    assert view["runs"] == 1
    public = await read_all(stack.settings.kafka_bootstrap, f"{stack.settings.topic_prefix}events")
    events = [decode(k, v, list(h.items())) for k, v, h in public]
    [event] = [e.event for e in events if e.event.type == "headrace.schedule.fired.v1"]
    assert event.run_id == fired["run_id"]
    assert event.schedule_id == sched["id"]  # type: ignore[attr-defined]


async def test_after_downtime_the_missed_occurrence_fires_once(
    stack: Stack, firers: list[ScheduleFirerService]
) -> None:
    """Five hours and a half of downtime fire one run, not five, and the schedule resumes
    at the first due time after now."""
    pid = await publish_echo(stack)
    sched = await create(stack, pipeline_id=pid, recurrence=hourly())
    h = firers[0].handlers
    late = START + timedelta(hours=5, minutes=30)
    assert await h.tick(late) == 1
    assert await h.tick(late) == 0
    view = (await stack.client.get(f"/api/v1/schedules/{sched['id']}")).json()
    assert view["next_due"] == (START + timedelta(hours=6)).isoformat()
    assert await h.tick(START + timedelta(hours=6)) == 1
    assert [f["due_at"] for f in await firings(stack, sched["id"])] == [
        (START + timedelta(hours=6)).isoformat(),
        START.isoformat(),
    ]


async def test_disabled_schedules_and_pipelines_do_not_fire(
    stack: Stack, firers: list[ScheduleFirerService]
) -> None:
    """A disabled schedule fires nothing and keeps no backlog; a schedule whose published
    pipeline is disabled moves on and records why the occurrence started no run."""
    pid = await publish_echo(stack)
    sched = await create(stack, pipeline_id=pid, recurrence=hourly())
    h = firers[0].handlers
    r = await stack.client.post(f"/api/v1/schedules/{sched['id']}/disable")
    assert r.json()["status"] == "Disabled"
    assert r.json()["next_due"] is None
    assert await h.tick(START + timedelta(hours=3)) == 0
    assert await firings(stack, sched["id"]) == []
    active = await stack.client.get("/api/v1/schedules", params={"pipeline_id": pid})
    assert active.json() == []
    r = await stack.client.post(f"/api/v1/schedules/{sched['id']}/enable")
    assert r.json()["next_due"] == START.isoformat()  # start_time is still ahead of today
    assert (await stack.client.post(f"/api/v1/pipelines/{pid}/disable")).status_code == 200
    runs_before = len((await stack.client.get("/api/v1/runs")).json())
    assert await h.tick(START) == 0
    [skipped] = await firings(stack, sched["id"])
    assert skipped["run_id"] is None
    assert "is disabled" in skipped["skipped_reason"]
    assert len((await stack.client.get("/api/v1/runs")).json()) == runs_before
    view = (await stack.client.get(f"/api/v1/schedules/{sched['id']}")).json()
    assert view["next_due"] == (START + timedelta(hours=1)).isoformat()


async def test_a_datastore_change_fires_once_with_the_changed_path(
    stack: Stack, firers: list[ScheduleFirerService]
) -> None:
    """What was there at creation starts nothing; a new object starts one run given its
    path; rewriting the same bytes starts nothing; changed content starts one more."""
    pid = await publish_echo(stack, default="")
    put = "/api/v1/datastores/{}/objects/incoming/{}"
    assert (
        await stack.client.put(put.format(DEFAULT_DATASTORE, "old.csv"), content=b"1")
    ).is_success
    sched = await create(
        stack,
        pipeline_id=pid,
        datastore=DEFAULT_DATASTORE,
        path_on_datastore="incoming",
        data_path_parameter_name="word",
        polling_interval=5,
    )
    assert sched["polling_interval"] == 5
    h = firers[0].handlers
    t0 = datetime.now(UTC) + timedelta(seconds=1)
    assert await h.tick(t0) == 0  # the baseline
    assert (
        await stack.client.put(put.format(DEFAULT_DATASTORE, "new.csv"), content=b"2")
    ).is_success
    assert await h.tick(t0 + timedelta(minutes=1)) == 0  # not due: polls every 5 minutes
    assert await h.tick(t0 + timedelta(minutes=5)) == 1
    [fired] = await firings(stack, sched["id"])
    run = await stack.wait_run(fired["run_id"])
    assert run["status"] == "Completed"
    out = await stack.client.get(f"/api/v1/runs/{fired['run_id']}/steps/echo/logs/stdout")
    assert out.text.strip() == "word incoming/new.csv"
    # Same bytes written again, behind the API's back: a new mtime, the same content.
    local = stack.settings.home / "datastores" / DEFAULT_DATASTORE / "incoming" / "new.csv"
    local.write_bytes(b"2")
    os.utime(local, (1, 1))
    assert await h.tick(t0 + timedelta(minutes=10)) == 0
    local.with_name("old.csv").write_bytes(b"changed")
    assert await h.tick(t0 + timedelta(minutes=15)) == 1
    assert [
        f["occurrence"].split(" ")[1].split("@")[0] for f in await firings(stack, sched["id"])
    ] == [
        "incoming/old.csv",
        "incoming/new.csv",
    ]


async def test_schedule_requests_are_checked_when_created_and_updated(stack: Stack) -> None:
    """Everything a firing would refuse later is refused at once, saying what to change;
    an update recomputes the next due time."""
    pid = await publish_echo(stack)
    bad: list[tuple[dict[str, Any], int, str]] = [
        ({"pipeline_id": pid}, 422, "exactly one of recurrence"),
        (
            {"pipeline_id": pid, "recurrence": hourly(), "datastore": DEFAULT_DATASTORE},
            422,
            "exactly one of recurrence",
        ),
        ({"pipeline_id": "nope", "recurrence": hourly()}, 404, "no published pipeline 'nope'"),
        (
            {"pipeline_id": pid, "recurrence": hourly(), "pipeline_parameters": {"nope": 1}},
            422,
            "unknown pipeline parameter 'nope'",
        ),
        (
            {"pipeline_id": pid, "recurrence": {"frequency": "Hour", "interval": 1, "hours": [1]}},
            422,
            "apply to frequency 'Day' or 'Week'",
        ),
        ({"pipeline_id": pid, "datastore": "nowhere"}, 404, "nowhere"),
        (
            {"pipeline_id": pid, "recurrence": hourly(), "data_path_parameter_name": "word"},
            422,
            "datastore-triggered schedule only",
        ),
        ({"pipeline_id": pid, "recurrence": hourly(), "every": "day"}, 422, "every"),
    ]
    for body, status, fragment in bad:
        r = await stack.client.post(
            "/api/v1/schedules", json={"name": "s", "experiment_name": "e", **body}
        )
        assert r.status_code == status, (body, r.text)
        assert fragment in r.text, (body, r.text)
    assert (
        await stack.client.get("/api/v1/schedules", params={"active_only": "false"})
    ).json() == []
    sched = await create(stack, pipeline_id=pid, recurrence=hourly())
    later = START + timedelta(days=1)
    r = await stack.client.patch(
        f"/api/v1/schedules/{sched['id']}",
        json={"name": "renamed", "recurrence": {**hourly(later), "frequency": "Day"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed"
    assert r.json()["next_due"] == later.isoformat()
    assert r.json()["recurrence"]["frequency"] == "Day"
    r = await stack.client.patch(f"/api/v1/schedules/{sched['id']}", json={"datastore": "x"})
    assert r.status_code == 422
    assert "takes no datastore" in r.text
    assert (await stack.client.patch("/api/v1/schedules/nope", json={})).status_code == 404
