"""With an event key, internal topics take only events the services signed (real broker)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from contracts import events as ev
from contracts.envelope import encode
from contracts.topics import Topics
from services.runtime.settings import RuntimeSettings
from tests.helpers import eventually
from tests.integration.conftest import Stack, running_stack
from tests.integration.kafka_tools import produce_raw, read_all


@pytest.fixture
async def signed_stack(runtime_settings: RuntimeSettings) -> AsyncIterator[Stack]:
    """Every service in this process, signing and checking internal events."""
    settings = runtime_settings.model_copy(update={"event_key": SecretStr("test-key-" + "x" * 24)})
    async with running_stack(settings) as s:
        yield s


async def test_forged_result_is_dead_lettered_and_signed_runs_complete(
    signed_stack: Stack,
) -> None:
    """An unsigned ``ArtifactsUploaded`` produced straight to the results topic is
    dead-lettered as unauthenticated and changes nothing; runs, whose events the services
    sign, complete; an unsigned run request (the public input) is still accepted."""
    stack = signed_stack
    topics = Topics(stack.settings.topic_prefix)
    boot = stack.settings.kafka_bootstrap
    forged = encode(
        ev.ArtifactsUploaded(
            run_id="victim", step="s", attempt=1, outputs=[], metrics=0, outcome="succeeded"
        ),
        source="/attacker",
    )
    await produce_raw(boot, topics.results, forged.value, forged.headers, key=b"victim")

    async def dead() -> bool:
        return len(await read_all(boot, topics.deadletter)) >= 1

    await eventually(dead, timeout=20)
    [(_, _, headers)] = await read_all(boot, topics.deadletter)
    assert b"unauthenticated event" in headers["x-headrace-dlq-reason"]

    snap = await stack.upload_snapshot({"ok.py": "print('ok')\n"})
    steps = [{"name": "s", "script_name": "ok.py", "snapshot": snap}]
    rid = (await stack.submit({"steps": steps})).json()["run_id"]
    assert (await stack.wait_run(rid))["status"] == "Completed"

    request = encode(
        ev.RunRequested.model_validate(
            {"run_id": "from-outside", "experiment": "ext", "pipeline": {"steps": steps}}
        ),
        source="/other-system",
    )
    await produce_raw(boot, topics.run_requests, request.value, request.headers, key=b"x")

    async def recorded() -> bool:
        return (await stack.client.get("/api/v1/runs/from-outside")).status_code == 200

    await eventually(recorded, timeout=20)
    assert (await stack.wait_run("from-outside"))["status"] == "Completed"
