"""``make bench``: print a table and write bench/results/latest.json.

Medians of several repetitions on the embedded stack (every service its own process, a real
broker and PostgreSQL). Not part of ``make test``: timings on shared machines are noisy, so
they are reported, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.data import data_bench
from bench.environments import environment_bench
from bench.floor import broker_round_trip_ms, commit_ms
from bench.harness import BenchStack, chain, fan_out
from bench.snapshot import snapshot_bench

CHAIN_STEPS = 50
FAN_STEPS = 200
REPS = 3
RESULTS = Path(__file__).parent / "results"
console = Console()

#: broker hops and database commits on one chain step's critical path (see README)
HOPS_PER_STEP = 4
COMMITS_PER_STEP = 6


async def main() -> dict[str, Any]:
    out: dict[str, Any] = {
        "machine": platform.node(),
        "python": platform.python_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="headrace-bench-") as tmp:
        home = Path(tmp)
        with console.status("chain: starting the embedded stack (2 runners)..."):
            async with BenchStack(home, runners=2) as stack:
                snap = await stack.upload({"noop.py": b""})
                await stack.run(chain(snap, 5))  # warm up: snapshot cached, groups joined
                walls, breakdowns = [], []
                for i in range(REPS):
                    console.log(f"chain {i + 1}/{REPS}")
                    run_id, wall = await stack.run(chain(snap, CHAIN_STEPS))
                    walls.append(wall)
                    breakdowns.append(await stack.phase_breakdown(run_id))
                wall = statistics.median(walls)
                out["chain"] = {
                    "steps": CHAIN_STEPS,
                    "wall_s": wall,
                    "walls_s": walls,
                    "ms_per_step": wall / CHAIN_STEPS * 1000,
                    "breakdown_ms": {
                        k: statistics.median(b[k] for b in breakdowns) for k in breakdowns[0]
                    },
                }
                console.log("reuse: the chain once with reuse on, then again (all reused)")
                await stack.run(chain(snap, CHAIN_STEPS, allow_reuse=True))
                reused = [
                    (await stack.run(chain(snap, CHAIN_STEPS, allow_reuse=True)))[1]
                    for _ in range(REPS)
                ]
                out["reuse"] = {
                    "steps": CHAIN_STEPS,
                    "wall_s": statistics.median(reused),
                    "ms_per_step": statistics.median(reused) / CHAIN_STEPS * 1000,
                }
                console.log("floor: broker round trip and commit time")
                out["floor"] = {
                    "broker_round_trip_ms": await broker_round_trip_ms(stack.sup.broker.bootstrap),
                    "commit_ms": await commit_ms(stack.sup.database_url),
                }
        out["fan_out"] = {}
        for runners in (1, 2, 4):
            with console.status(f"fan-out: stack with {runners} runner(s)..."):
                async with BenchStack(home, runners=runners) as stack:
                    snap = await stack.upload({"noop.py": b""})
                    await stack.run(fan_out(snap, 4))
                    walls = []
                    cpu0 = stack.cpu_seconds()
                    for i in range(REPS):
                        console.log(f"fan-out {runners} runner(s) {i + 1}/{REPS}")
                        walls.append((await stack.run(fan_out(snap, FAN_STEPS)))[1])
                    cpu1 = stack.cpu_seconds()
            wall = statistics.median(walls)
            steps_run = REPS * (FAN_STEPS + 1)
            out["fan_out"][str(runners)] = {
                "steps": FAN_STEPS + 1,
                "wall_s": wall,
                "steps_per_s": (FAN_STEPS + 1) / wall,
                "cpu_ms_per_step": {
                    k: round((cpu1[k] - cpu0.get(k, 0.0)) / steps_run * 1000, 2) for k in cpu1
                },
            }
        with console.status("snapshot: 5,000 files, ~200 MB, then one file changed..."):
            async with BenchStack(home, runners=1) as stack:
                out["snapshot"] = await asyncio.to_thread(
                    snapshot_bench,
                    f"http://127.0.0.1:{stack.sup.api_port}",
                    stack.sup.token,
                    home / "tree",
                )
        with console.status("environments: numpy + scikit-learn, cold and warm..."):
            out["environments"] = await asyncio.to_thread(environment_bench, home / "envs")
        with console.status("remote data: 200 MB on S3 (SeaweedFS), download and mount..."):
            out["data"] = await asyncio.to_thread(data_bench, home / "data")
    floor = out["floor"]
    out["chain"]["floor_ms_per_step"] = (
        HOPS_PER_STEP * floor["broker_round_trip_ms"] + COMMITS_PER_STEP * floor["commit_ms"]
    )
    return out


def render(r: dict[str, Any]) -> None:
    t = Table(title="headrace bench (medians)")
    t.add_column("benchmark")
    t.add_column("result", justify="right")
    t.add_column("target")
    c = r["chain"]
    t.add_row(f"chain {c['steps']} steps: per step", f"{c['ms_per_step']:.1f} ms", "<= 25 ms")
    for k, v in c["breakdown_ms"].items():
        t.add_row(f"  {k}", f"{v:.1f} ms", "")
    t.add_row(
        "  floor (hops x round trip + commits x commit)",
        f"{c['floor_ms_per_step']:.1f} ms",
        f"overhead = {c['ms_per_step'] / c['floor_ms_per_step']:.1f}x floor",
    )
    for n, f in r["fan_out"].items():
        t.add_row(
            f"fan-out {f['steps']} steps, {n} runner(s)",
            f"{f['steps_per_s']:.1f} steps/s",
            ">= 60/s with 4" if n == "4" else "",
        )
    cpu = r["fan_out"]["4"]["cpu_ms_per_step"]
    t.add_row(
        "  CPU per step (4 runners)",
        f"{sum(cpu.values()):.1f} ms",
        ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])),
    )
    one, two = r["fan_out"]["1"]["steps_per_s"], r["fan_out"]["2"]["steps_per_s"]
    t.add_row("  scaling 2 runners / 1", f"{two / one:.2f}x", ">= 1.6x")
    t.add_row(
        "broker produce->consume round trip", f"{r['floor']['broker_round_trip_ms']:.2f} ms", ""
    )
    t.add_row("PostgreSQL one-row commit", f"{r['floor']['commit_ms']:.2f} ms", "")
    t.add_row(
        f"reuse: chain of {r['reuse']['steps']} all reused, per step",
        f"{r['reuse']['ms_per_step']:.1f} ms",
        "<= 5 ms",
    )
    sn = r["snapshot"]
    t.add_row(
        f"snapshot first submit ({sn['files']} files, {sn['tree_bytes'] / 1e6:.0f} MB)",
        f"{sn['first_upload_bytes'] / 1e6:.1f} MB in {sn['first_s']:.1f} s",
        "",
    )
    t.add_row(
        "snapshot resubmit, one file changed",
        f"{sn['resubmit_upload_bytes']:,} B in {sn['resubmit_s']:.2f} s",
        f"<= changed file {sn['changed_file_bytes']:,} B + 1%: "
        f"{sn['resubmit_over_changed_file']:.4f}x",
    )
    e = r["environments"]
    t.add_row(
        "environment numpy + scikit-learn: cold build (empty uv cache)",
        f"{e['cold_build_s']:.1f} s",
        f"lock + install + pack, {e['archive_mb']:.0f} MB tar",
    )
    t.add_row("  rebuild, warm uv cache", f"{e['warm_uv_cache_build_s']:.1f} s", "")
    t.add_row(
        "  runner materialisation (miss / hit)",
        f"{e['materialise_miss_s']:.1f} s / {e['materialise_hit_ms']:.2f} ms",
        "download + unpack, no index",
    )
    t.add_row(
        "  warm hit: no-op step in it vs default env",
        f"{e['warm_run_s'] * 1000:.0f} ms vs {e['default_env_run_s'] * 1000:.0f} ms",
        "no build, cached tree",
    )
    d = r["data"]
    t.add_row(
        f"S3 input {d['object_mb']:.0f} MB, download into a cold node cache",
        f"{d['download_cold_mb_per_s']:.0f} MB/s",
        "run wall minus a 1-byte input's",
    )
    t.add_row("  mount (rclone FUSE, streamed)", f"{d['mount_mb_per_s']:.0f} MB/s", "")
    t.add_row(
        "  download, object already cached",
        f"+{d['download_warm_over_baseline_ms']:.0f} ms",
        "a hard link",
    )
    console.print(t)


if __name__ == "__main__":
    results = asyncio.run(main())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    render(results)
    console.print(f"wrote {RESULTS / 'latest.json'}")
    sys.exit(0)
