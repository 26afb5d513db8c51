"""Custom environments on the real stack: built once per definition, run without the index.

The packages (``tomli-w``, ``six``) are small and absent from the service's own venv, so a
step that imports one proves it runs in its declared environment.
"""

from __future__ import annotations

import asyncio
from typing import Any

from contracts.environment import EnvironmentDefinition
from services.image_builder.handlers import ImageBuilderHandlers
from services.image_builder.service import ImageBuilderService
from services.image_builder.settings import ImageBuilderSettings
from services.runtime.db import create_pool
from tests.integration.conftest import Stack

PROBE = """\
import os, sys
import tomli_w
print("tomli_w", tomli_w.dumps({"a": 1}).strip(), os.environ.get("GREETING"))
print("path", os.environ["HEADRACE_ENV_PATH"])
"""


def env(*requirements: str, name: str = "probe") -> EnvironmentDefinition:
    return EnvironmentDefinition(
        name=name, pip_requirements=list(requirements), env_vars={"GREETING": "hi"}
    )


async def pipeline(
    stack: Stack, defn: EnvironmentDefinition, step: str = "probe"
) -> dict[str, Any]:
    snap = await stack.upload_snapshot({"probe.py": PROBE})
    return {
        "environments": [defn.model_dump(mode="json")],
        "steps": [
            {
                "name": step,
                "script_name": "probe.py",
                "snapshot": snap,
                "allow_reuse": False,
                "environment": defn.key,
            }
        ],
    }


async def run(stack: Stack, spec: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    r = await stack.submit(spec)
    assert r.status_code == 201, r.text
    return await stack.wait_run(r.json()["run_id"], timeout=timeout)


async def builds(stack: Stack) -> list[dict[str, Any]]:
    return list((await stack.client.get("/api/v1/environments/builds")).json())


async def stdout(stack: Stack, run_id: str, step: str = "probe") -> str:
    r = await stack.client.get(f"/api/v1/runs/{run_id}/steps/{step}/logs/stdout")
    return r.text


async def test_step_runs_in_its_environment_built_once(stack: Stack) -> None:
    """A step imports from its environment, materialised in the runner's cache; the same
    definition is built once, a changed one again with another digest."""
    defn = env("tomli-w==1.0.0")
    first = await run(stack, await pipeline(stack, defn))
    assert first["status"] == "Completed", first
    out = await stdout(stack, first["run_id"])
    assert "tomli_w a = 1 hi" in out
    assert f"path {stack.settings.home / 'envs'}" in out  # materialised in the runner's cache
    done = await builds(stack)
    assert [b["status"] for b in done] == ["succeeded"]

    second = await run(stack, await pipeline(stack, defn))
    assert second["status"] == "Completed"
    assert len(await builds(stack)) == 1  # the same definition is never built twice

    changed = env("tomli-w==1.1.0")
    third = await run(stack, await pipeline(stack, changed))
    assert third["status"] == "Completed"
    after = await builds(stack)
    assert len(after) == 2
    assert after[0]["digest"] != after[1]["digest"]


async def test_concurrent_requests_build_once(stack: Stack) -> None:
    """Two runs at once, two image builders: one build, both runs complete."""
    base = stack.settings.model_dump()
    extra = ImageBuilderService(ImageBuilderSettings(**base), instance_id="builder-2")
    await extra.start()
    try:
        defn = env("tomli-w==1.0.0", "six==1.16.0")
        specs = [await pipeline(stack, defn, step=f"s{i}") for i in range(2)]
        runs = await asyncio.gather(*(run(stack, s) for s in specs))
        assert [r["status"] for r in runs] == ["Completed", "Completed"]
        assert len(await builds(stack)) == 1
    finally:
        await extra.stop(grace=5)


async def test_builders_serialise_on_the_advisory_lock(stack: Stack) -> None:
    """Two builder instances (no shared in-process lock) asked at the same moment."""
    base = stack.settings.model_dump()
    pools = [await create_pool(stack.settings.database_url) for _ in range(2)]
    try:
        handlers = []
        for i, pool in enumerate(pools):
            delivery = stack.api.delivery("x")
            delivery.pool = pool
            handlers.append(ImageBuilderHandlers(ImageBuilderSettings(**base), delivery, f"b{i}"))
        defn = env("six==1.16.0", name="raced")
        results = await asyncio.gather(*(h._build_once(defn) for h in handlers))
        assert results[0] == results[1]
        assert len(await builds(stack)) == 1
    finally:
        for pool in pools:
            await pool.close()


async def test_broken_requirement_fails_with_the_resolver_message(stack: Stack) -> None:
    """An unknown requirement fails the step and run with the resolver's message and the build
    log's place; a failed build is not cached, so the next run tries again."""
    defn = env("headrace-no-such-package-zzz==1.0")
    for attempt in (1, 2):
        failed = await run(stack, await pipeline(stack, defn))
        assert failed["status"] == "Failed"
        assert "headrace-no-such-package-zzz" in failed["error"]
        assert "build log: datastore 'workspaceblobstore'" in failed["error"]
        steps = (await stack.client.get(f"/api/v1/runs/{failed['run_id']}/steps")).json()
        assert steps[0]["status"] == "Failed"
        assert "headrace-no-such-package-zzz" in steps[0]["error"]
        # nothing is cached for a failed build: the second run tries again
        assert [b["status"] for b in await builds(stack)] == ["failed"] * attempt


async def test_conflicting_requirements_and_unknown_environment_key(stack: Stack) -> None:
    """Conflicting pins fail the run naming the package; a step naming an environment the
    pipeline lacks is a 422."""
    conflict = await run(stack, await pipeline(stack, env("six==1.16.0", "six==1.15.0")))
    assert conflict["status"] == "Failed"
    assert "six" in conflict["error"]
    spec = await pipeline(stack, env("six==1.16.0"))
    spec["steps"][0]["environment"] = "nope@1:0000"
    r = await stack.submit(spec)
    assert r.status_code == 422
    assert "environment 'nope@1:0000' is not among the pipeline's environments" in r.text


async def test_register_and_get_versions(stack: Stack) -> None:
    """Registering the same definition keeps its version, a changed one gets the next; a taken
    version is a 409, a pip option a 422, an unknown name a 404."""
    c = stack.client
    body = {"name": "sk", "pip_requirements": ["six==1.16.0"], "env_vars": {"A": "1"}}
    v1 = (await c.post("/api/v1/environments", json=body)).json()
    assert v1["version"] == "1"
    assert (await c.post("/api/v1/environments", json=body)).json()["version"] == "1"
    v2 = (await c.post("/api/v1/environments", json={**body, "env_vars": {"A": "2"}})).json()
    assert v2["version"] == "2"
    latest = (await c.get("/api/v1/environments/sk")).json()
    assert latest["definition"]["env_vars"] == {"A": "2"}
    old = (await c.get("/api/v1/environments/sk", params={"version": "1"})).json()
    assert old["definition"]["env_vars"] == {"A": "1"}
    clash = await c.post("/api/v1/environments", json={**body, "version": "1", "env_vars": {}})
    assert clash.status_code == 409
    bad = await c.post("/api/v1/environments", json={**body, "pip_requirements": ["-e ."]})
    assert bad.status_code == 422
    assert "pip option" in bad.text
    assert (await c.get("/api/v1/environments/nope")).status_code == 404
