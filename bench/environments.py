"""Environment benchmarks for a numpy + scikit-learn definition.

- cold build: lock + install + pack with an empty uv cache (every wheel downloaded);
- rebuild with a warm uv cache (what a changed requirement costs once wheels are local);
- runner materialisation: download the artifact from the datastore and unpack it into a
  runner's cache (a miss), and the cost of a hit;
- warm hit end to end: a one-step run in the built environment against the same step in the
  default environment, on the embedded stack (the builder finds the definition recorded and
  builds nothing; the runner finds the tree in its cache).
"""

from __future__ import annotations

import asyncio
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import BenchStack
from contracts.environment import EnvironmentDefinition
from services.image_builder.build import EnvironmentArtifacts, build, environment_digest, lock, pack
from services.image_builder.settings import ImageBuilderSettings
from services.runtime.storage import DatastoreRecord, open_datastore
from services.step_runner.envcache import EnvironmentCache

__all__ = ["DEFINITION", "environment_bench"]

DEFINITION = EnvironmentDefinition(
    name="bench-sklearn", pip_requirements=["numpy==2.*", "scikit-learn==1.*"]
)
PROBE = b"import sklearn.linear_model\n"


async def _build_once(root: Path, uv_cache: Path) -> tuple[float, str, Path]:
    uv = ImageBuilderSettings().uv_path
    python = platform.python_version()
    t0 = time.perf_counter()
    locked = await lock(DEFINITION, python, root, uv, uv_cache)
    digest = environment_digest(locked.locked, python, {}, sys.platform)
    await build(locked.locked, root / "env", Path(sys.executable), uv, uv_cache, root / "log")
    await asyncio.to_thread(pack, root / "env", root / "env.tar")
    return time.perf_counter() - t0, digest, root / "env.tar"


async def _library(tmp: Path, reps: int) -> dict[str, Any]:
    cold, warm = [], []
    warm_cache = tmp / "uv-warm"
    for i in range(reps):
        t, _, _ = await _build_once(tmp / f"cold{i}", tmp / f"uv-cold{i}")
        cold.append(t)
        shutil.rmtree(tmp / f"uv-cold{i}", ignore_errors=True)
    await _build_once(tmp / "prime", warm_cache)
    for i in range(reps):
        t, digest, archive = await _build_once(tmp / f"warm{i}", warm_cache)
        warm.append(t)
    store = open_datastore(
        DatastoreRecord(name="bench", kind="local", config={"root": str(tmp / "store")})
    )
    await EnvironmentArtifacts.publish(store, digest, archive, "", b"")
    misses, hits = [], []
    for i in range(reps):
        cache = EnvironmentCache(tmp / f"runner{i}", 50 * 1024**3)
        t0 = time.perf_counter()
        await cache.ensure(digest, store)
        misses.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await cache.ensure(digest, store)
        hits.append(time.perf_counter() - t0)
    return {
        "cold_build_s": statistics.median(cold),
        "cold_builds_s": cold,
        "warm_uv_cache_build_s": statistics.median(warm),
        "archive_mb": archive.stat().st_size / 1e6,
        "materialise_miss_s": statistics.median(misses),
        "materialise_hit_ms": statistics.median(hits) * 1000,
    }


async def _stack(home: Path, reps: int) -> dict[str, Any]:
    async with BenchStack(home, runners=1) as stack:
        snap = await stack.upload({"probe.py": PROBE})
        step = {"name": "probe", "script_name": "probe.py", "snapshot": snap, "allow_reuse": False}
        in_env = {
            "environments": [DEFINITION.model_dump(mode="json")],
            "steps": [{**step, "environment": DEFINITION.key}],
        }
        run_id, first = await stack.run(in_env)  # builds (uv cache: the user's), materialises
        status = (await stack.http.get(f"/runs/{run_id}")).json()["status"]
        assert status == "Completed", f"the environment run ended {status}"
        # Timed runs import nothing, so they show what the environment itself costs a step
        # (the runner's cache hit, the tree on the path), not scikit-learn's import time.
        noop = await stack.upload({"probe.py": b""})
        default = {"steps": [{**step, "snapshot": noop}]}
        in_env["steps"] = [{**step, "snapshot": noop, "environment": DEFINITION.key}]
        await stack.run(default)
        env_walls, default_walls = [], []
        for _ in range(reps):
            env_walls.append((await stack.run(in_env))[1])
            default_walls.append((await stack.run(default))[1])
    return {
        "first_run_s": first,
        "warm_run_s": statistics.median(env_walls),
        "default_env_run_s": statistics.median(default_walls),
    }


def environment_bench(home: Path, reps: int = 3) -> dict[str, Any]:
    """Run both parts; figures in seconds unless named otherwise."""
    with tempfile.TemporaryDirectory(prefix="headrace-envbench-") as tmp:
        library = asyncio.run(_library(Path(tmp), reps))
    return {**library, **asyncio.run(_stack(home, reps))}


if __name__ == "__main__":
    import json

    with tempfile.TemporaryDirectory(prefix="headrace-bench-") as home:
        print(json.dumps(environment_bench(Path(home)), indent=2))
