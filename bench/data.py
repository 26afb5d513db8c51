"""Remote input benchmarks: a step reading a 200 MB object on S3 (SeaweedFS, same host).

Modes: download into a cold node cache (the cache is emptied before each run), a read-only
FUSE mount (rclone), and download with the object already cached (a hard link). Each figure
is the run's wall time, submit to completion, minus that of the same step reading a 1-byte
cached object, so it is the input's cost alone; the step reads the whole file in 8 MiB reads.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.harness import BenchStack
from services.runtime.storage import DatastoreRecord, open_datastore
from tests.servers import SeaweedServer, run_seaweedfs

__all__ = ["data_bench"]

SIZE = 200 * 1024 * 1024
READ = b"""\
import sys
n = 0
with open(sys.argv[1], "rb") as f:
    while b := f.read(8 << 20):
        n += len(b)
print(n)
"""


def _pipeline(snapshot: str, key: str, mode: str) -> dict[str, Any]:
    step = {
        "name": "read",
        "script_name": "read.py",
        "snapshot": snapshot,
        "allow_reuse": False,
        "inputs": [
            {
                "kind": "datastore",
                "name": "raw",
                "datastore": "bench_s3",
                "path_on_datastore": key,
                "mode": mode,
            }
        ],
        "arguments": [{"kind": "input", "name": "raw"}],
    }
    return {"steps": [step]}


async def _bench(home: Path, s3: SeaweedServer, reps: int) -> dict[str, Any]:
    config = s3.datastore_config("bench")
    store = open_datastore(DatastoreRecord(name="bench_s3", kind="s3", config=config))
    blob = home / "blob.bin"
    home.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(os.urandom(SIZE))
    await store.upload_file(blob, "big/blob.bin")
    await store.put("tiny/one.bin", b"x")
    cache = home / "stack" / "cache" / "data" / "objects"
    async with BenchStack(home / "stack", runners=1) as stack:
        body = {"name": "bench_s3", "kind": "s3", "config": config}
        (await stack.http.post("/datastores", json=body)).raise_for_status()
        snap = await stack.upload({"read.py": READ})

        async def wall(key: str, mode: str) -> float:
            run_id, seconds = await stack.run(_pipeline(snap, key, mode))
            status = (await stack.http.get(f"/runs/{run_id}")).json()["status"]
            assert status == "Completed", f"the {mode} run ended {status}"
            return seconds

        await wall("tiny/one.bin", "download")  # warm up: groups joined, tiny object cached
        base = statistics.median([await wall("tiny/one.bin", "download") for _ in range(reps)])
        out: dict[str, Any] = {"object_mb": SIZE / 1e6, "baseline_s": base}
        for label, mode in (("download_cold", "download"), ("mount", "mount")):
            walls = []
            for _ in range(reps):
                if mode == "download":
                    shutil.rmtree(cache, ignore_errors=True)
                walls.append(await wall("big/blob.bin", mode))
            out[f"{label}_s"] = statistics.median(walls)
        await wall("big/blob.bin", "download")  # the entry is cached from here on
        out["download_warm_s"] = statistics.median(
            [await wall("big/blob.bin", "download") for _ in range(reps)]
        )
    for label in ("download_cold", "mount"):
        out[f"{label}_mb_per_s"] = out["object_mb"] / max(out[f"{label}_s"] - base, 1e-3)
    out["download_warm_over_baseline_ms"] = (out["download_warm_s"] - base) * 1000
    return out


def data_bench(home: Path, reps: int = 3) -> dict[str, Any]:
    """Start SeaweedFS and an embedded stack in ``home``; figures in seconds and MB/s."""
    with run_seaweedfs() as s3:
        return asyncio.run(_bench(home, s3, reps))


if __name__ == "__main__":
    import json

    with tempfile.TemporaryDirectory(prefix="headrace-bench-") as tmp:
        print(json.dumps(data_bench(Path(tmp)), indent=2))
