"""Retries, timeouts, cancellation, lost runners and lost commands, on the real stack."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from contracts import events as ev
from contracts.envelope import encode
from contracts.topics import Topics
from services.runtime.settings import RuntimeSettings
from tests.helpers import eventually
from tests.integration.conftest import Stack, running_stack
from tests.integration.kafka_tools import produce_raw

FLAKY = """
import pathlib, sys
marker = pathlib.Path(sys.argv[1])
n = int(marker.read_text()) if marker.exists() else 0
marker.write_text(str(n + 1))
sys.exit(0 if n + 1 >= int(sys.argv[2]) else 1)
"""

SLEEP = """
import os, pathlib, subprocess, sys, time
pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
pathlib.Path(sys.argv[1] + ".child").write_text(str(child.pid))
time.sleep(600)
"""


def lit(v: str) -> dict[str, str]:
    return {"kind": "literal", "value": v}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False


async def db(stack: Stack) -> asyncpg.Connection:
    return await asyncpg.connect(stack.settings.database_url)


async def test_script_failures_retry_as_the_step_asks(stack: Stack, tmp_path: Path) -> None:
    """A step failing twice with max_retries=2 completes on its third attempt."""
    snap = await stack.upload_snapshot({"flaky.py": FLAKY})
    marker = tmp_path / "count"
    steps = [
        {
            "name": "flaky",
            "script_name": "flaky.py",
            "snapshot": snap,
            "max_retries": 2,
            "arguments": [lit(str(marker)), lit("3")],
        }
    ]
    run = await stack.wait_run((await stack.submit({"steps": steps})).json()["run_id"])
    assert run["status"] == "Completed"
    assert run["steps"][0]["attempt"] == 3
    assert marker.read_text() == "3"


async def test_retries_are_bounded(stack: Stack, tmp_path: Path) -> None:
    """Without enough retries the step fails after max_retries + 1 attempts."""
    snap = await stack.upload_snapshot({"flaky.py": FLAKY})
    steps = [
        {
            "name": "flaky",
            "script_name": "flaky.py",
            "snapshot": snap,
            "max_retries": 1,
            "arguments": [lit(str(tmp_path / "c")), lit("5")],
        }
    ]
    run = await stack.wait_run((await stack.submit({"steps": steps})).json()["run_id"])
    assert run["status"] == "Failed"
    assert run["steps"][0]["attempt"] == 2


async def test_timeout_kills_the_process_group(stack: Stack, tmp_path: Path) -> None:
    """A step over its timeout is killed with its children and fails saying it timed out."""
    snap = await stack.upload_snapshot({"sleep.py": SLEEP})
    pidfile = tmp_path / "pid"
    steps = [
        {
            "name": "slow",
            "script_name": "sleep.py",
            "snapshot": snap,
            "timeout_seconds": 2,
            "arguments": [lit(str(pidfile))],
        }
    ]
    run = await stack.wait_run((await stack.submit({"steps": steps})).json()["run_id"])
    assert run["status"] == "Failed"
    assert "timed out after 2 s" in run["steps"][0]["error"]
    child = int(Path(str(pidfile) + ".child").read_text())
    await eventually(lambda: _dead(child), timeout=5)


async def _dead(pid: int) -> bool:
    return not alive(pid)


async def test_cancel_kills_running_step_and_skips_the_rest(stack: Stack, tmp_path: Path) -> None:
    """Cancel ends the run Canceled, kills the running script and its child within 5 s."""
    snap = await stack.upload_snapshot({"sleep.py": SLEEP})
    pidfile = tmp_path / "pid"
    steps = [
        {
            "name": "slow",
            "script_name": "sleep.py",
            "snapshot": snap,
            "arguments": [lit(str(pidfile)), {"kind": "output", "name": "o"}],
            "outputs": [{"name": "o"}],
        },
        {
            "name": "after",
            "script_name": "sleep.py",
            "snapshot": snap,
            "arguments": [lit(str(tmp_path / "never"))],
            "inputs": [{"kind": "pipeline_data", "name": "o"}],
        },
    ]
    rid = (await stack.submit({"steps": steps})).json()["run_id"]
    await eventually(lambda: _exists(Path(str(pidfile) + ".child")), timeout=20)
    pid, child = int(pidfile.read_text()), int(Path(str(pidfile) + ".child").read_text())
    t0 = time.monotonic()
    r = await stack.client.post(f"/api/v1/runs/{rid}/cancel", json={"reason": "test"})
    assert r.status_code == 202, r.text
    await eventually(lambda: _both_dead(pid, child), timeout=5)
    assert time.monotonic() - t0 < 5
    run = await stack.wait_run(rid)
    assert run["status"] == "Canceled"
    assert [s["status"] for s in run["steps"]] == ["Canceled", "Canceled"]
    assert not (tmp_path / "never").exists()
    again = await stack.client.post(f"/api/v1/runs/{rid}/cancel")
    assert again.status_code == 409
    assert "already Canceled" in again.json()["detail"]
    unknown = await stack.client.post("/api/v1/runs/nope/cancel")
    assert unknown.status_code == 404


async def _exists(p: Path) -> bool:
    return p.exists()


async def _both_dead(a: int, b: int) -> bool:
    return not alive(a) and not alive(b)


async def test_continue_on_step_failure_lets_other_branches_finish(stack: Stack) -> None:
    """With continue_on_step_failure a failed branch is skipped downstream, others complete."""
    snap = await stack.upload_snapshot({"ok.py": "", "bad.py": "raise SystemExit(2)"})
    steps = [
        {"name": "bad", "script_name": "bad.py", "snapshot": snap, "outputs": [{"name": "b"}]},
        {
            "name": "after_bad",
            "script_name": "ok.py",
            "snapshot": snap,
            "inputs": [{"kind": "pipeline_data", "name": "b"}],
        },
        {"name": "good", "script_name": "ok.py", "snapshot": snap, "outputs": [{"name": "g"}]},
        {
            "name": "after_good",
            "script_name": "ok.py",
            "snapshot": snap,
            "inputs": [{"kind": "pipeline_data", "name": "g"}],
        },
    ]
    rid = (await stack.submit({"steps": steps, "continue_on_step_failure": True})).json()["run_id"]
    run = await stack.wait_run(rid)
    assert run["status"] == "Failed"
    assert {s["name"]: s["status"] for s in run["steps"]} == {
        "bad": "Failed",
        "after_bad": "Skipped",
        "good": "Completed",
        "after_good": "Completed",
    }


async def test_lost_runner_is_fenced_and_step_rerun(
    runtime_settings: RuntimeSettings, tmp_path: Path
) -> None:
    """An attempt whose runner stops heartbeating is fenced; a new attempt completes the step;
    the stale attempt's late result is rejected."""
    settings = runtime_settings.model_copy()
    async with running_stack(settings, runners=0) as stack:
        snap = await stack.upload_snapshot({"ok.py": "print('ran')"})
        steps = [{"name": "s", "script_name": "ok.py", "snapshot": snap}]
        rid = (await stack.submit({"steps": steps})).json()["run_id"]
        conn = await db(stack)
        try:

            async def dispatched() -> bool:
                return bool(
                    await conn.fetchval("SELECT phase FROM steps WHERE run_id = $1", rid)
                    == "dispatched"
                )

            await eventually(dispatched)
            # A runner that claims and then goes silent (killed, frozen, partitioned).
            await conn.execute(
                "INSERT INTO step_attempts (run_id, step, attempt, runner_id, status,"
                " lease_until) VALUES ($1, 's', 1, 'ghost', 'running', now() + interval '1 s')",
                rid,
            )
            from services.step_runner.service import StepRunnerService
            from services.step_runner.settings import StepRunnerSettings

            runner = StepRunnerService(
                StepRunnerSettings(**settings.model_dump(), runner_id="real")
            )
            await runner.start()
            try:
                run = await stack.wait_run(rid, timeout=30)
            finally:
                await runner.stop()
            assert run["status"] == "Completed"
            assert run["steps"][0]["attempt"] == 2
            attempts = await conn.fetch(
                "SELECT attempt, runner_id, status FROM step_attempts WHERE run_id = $1"
                " ORDER BY attempt",
                rid,
            )
            assert [(a["attempt"], a["runner_id"], a["status"]) for a in attempts] == [
                (1, "ghost", "fenced"),
                (2, "real", "finished"),
            ]
            # The ghost comes back and reports attempt 1 as failed: handled, and ignored.
            late = encode(
                ev.ArtifactsUploaded(
                    run_id=rid,
                    step="s",
                    attempt=1,
                    outputs=[],
                    metrics=0,
                    outcome="failed",
                    exit_code=1,
                    error="ghost",
                ),
                source="/ghost",
            )
            event_id = dict(late.headers)["ce_id"].decode()
            await produce_raw(
                settings.kafka_bootstrap,
                Topics(settings.topic_prefix).results,
                late.value,
                late.headers,
                key=late.key or b"",
            )

            async def handled() -> bool:
                return bool(
                    await conn.fetchval(
                        "SELECT true FROM inbox WHERE consumer = 'scheduler-results'"
                        " AND event_id = $1",
                        event_id,
                    )
                )

            await eventually(handled, timeout=20)
            after = await stack.wait_run(rid, timeout=5)
            assert after["status"] == "Completed"
            assert [(s["status"], s["attempt"]) for s in after["steps"]] == [("Completed", 2)]
        finally:
            await conn.close()


async def test_slow_preparation_keeps_the_lease(
    runtime_settings: RuntimeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step whose preparation (snapshot and environment materialised from the store) takes
    longer than the lease is neither fenced by the watchdog nor killed by its own lease guard:
    the runner renews the lease from the claim on, not only once the process runs."""
    from services.runtime.snapshots import materialise as real
    from services.step_runner.service import StepRunnerService
    from services.step_runner.settings import StepRunnerSettings

    lease = 1.5

    async def slow_materialise(*args: Any, **kw: Any) -> Path:
        # models a large environment unpacked on a loaded machine: work, not ordering
        await asyncio.sleep(3 * lease)
        return await real(*args, **kw)

    monkeypatch.setattr("services.step_runner.handlers.materialise", slow_materialise)
    settings = runtime_settings.model_copy()
    async with running_stack(settings, runners=0) as stack:
        snap = await stack.upload_snapshot({"ok.py": "print('ran')"})
        rid = (
            await stack.submit({"steps": [{"name": "s", "script_name": "ok.py", "snapshot": snap}]})
        ).json()["run_id"]
        runner = StepRunnerService(
            StepRunnerSettings(
                **settings.model_dump(),
                runner_id="slow",
                lease_seconds=lease,
                heartbeat_seconds=0.2,
            )
        )
        await runner.start()
        try:
            run = await stack.wait_run(rid, timeout=30)
        finally:
            await runner.stop()
        assert run["status"] == "Completed", run
        assert [(s["status"], s["attempt"]) for s in run["steps"]] == [("Completed", 1)]
