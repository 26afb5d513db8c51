"""Drive an embedded stack: upload a snapshot, submit pipelines, time them by their events."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.envelope import decode
from contracts.snapshot import ManifestEntry, SnapshotManifest, digest_bytes
from contracts.topics import Topics
from headrace.stack.process import Child
from headrace.stack.supervisor import StackOptions, Supervisor

__all__ = ["BenchStack", "chain", "fan_out"]


def chain(snapshot: str, n: int, *, allow_reuse: bool = False) -> dict[str, Any]:
    """``n`` no-op steps, each consuming the previous one's output."""
    steps = []
    for i in range(n):
        step: dict[str, Any] = {
            "name": f"s{i:03d}",
            "script_name": "noop.py",
            "snapshot": snapshot,
            "allow_reuse": allow_reuse,
            "outputs": [{"name": f"d{i}"}],
        }
        if i:
            step["inputs"] = [{"kind": "pipeline_data", "name": f"d{i - 1}"}]
        steps.append(step)
    return {"steps": steps}


def fan_out(snapshot: str, n: int) -> dict[str, Any]:
    """``n`` independent no-op steps and a join consuming all their outputs."""
    steps: list[dict[str, Any]] = [
        {
            "name": f"f{i:03d}",
            "script_name": "noop.py",
            "snapshot": snapshot,
            "allow_reuse": False,
            "outputs": [{"name": f"o{i}"}],
        }
        for i in range(n)
    ]
    steps.append(
        {
            "name": "join",
            "script_name": "noop.py",
            "snapshot": snapshot,
            "allow_reuse": False,
            "inputs": [{"kind": "pipeline_data", "name": f"o{i}"} for i in range(n)],
        }
    )
    return {"steps": steps}


class BenchStack:
    """An embedded stack in its own home, with helpers to time runs."""

    def __init__(self, home: Path, runners: int) -> None:
        self.sup = Supervisor(home, StackOptions(runners=runners))
        self.api = f"http://127.0.0.1:{self.sup.api_port}/api/v1"
        self.http = httpx.AsyncClient(base_url=self.api, timeout=60)
        self.consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> BenchStack:
        await asyncio.to_thread(self.sup.start)
        self.http.headers["Authorization"] = f"Bearer {self.sup.token}"
        topic = Topics(self.sup.options.topic_prefix).public
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.sup.broker.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=5,
        )
        await self.consumer.start()
        parts = self.consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        await self.http.aclose()
        await asyncio.to_thread(self.sup.stop)

    async def upload(self, files: dict[str, bytes]) -> str:
        entries = []
        for path, data in sorted(files.items()):
            digest = digest_bytes(data)
            entries.append(ManifestEntry(path=path, digest=digest, size=len(data)))
            (await self.http.put(f"/blobs/{digest}", content=data)).raise_for_status()
        manifest = SnapshotManifest(files=entries)
        (
            await self.http.put(f"/blobs/{manifest.digest}", content=manifest.canonical_bytes())
        ).raise_for_status()
        return manifest.digest

    async def run(self, pipeline: dict[str, Any]) -> tuple[str, float]:
        """Submit and wait for the run's terminal public event; (run id, seconds)."""
        assert self.consumer is not None
        t0 = time.perf_counter()
        r = await self.http.post(
            "/runs", json={"experiment": f"bench-{uuid.uuid4().hex[:6]}", "pipeline": pipeline}
        )
        r.raise_for_status()
        run_id = r.json()["run_id"]
        while True:
            batch = await self.consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for rec in records:
                    ev = decode(rec.key, rec.value, rec.headers or []).event
                    if ev.run_id != run_id:
                        continue
                    if ev.type == "headrace.run.completed.v1":
                        return run_id, time.perf_counter() - t0
                    if ev.type in ("headrace.run.failed.v1", "headrace.run.canceled.v1"):
                        raise RuntimeError(f"bench run {run_id} ended {ev.type}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far by each component (its waited-for children included, so a
        runner's figure covers the step processes it started)."""
        comps: dict[str, Child | None] = {
            "postgres": self.sup.postgres.child,
            "broker": self.sup.broker.child,
        }
        comps.update({c.name.split("-")[0]: c for c in self.sup.services})
        out: dict[str, float] = {}
        for name, child in comps.items():
            total = 0.0
            procs: list[Child | None] = [
                c for c in self.sup.services if c.name.split("-")[0] == name
            ] or [child]
            for proc in procs:
                if proc is None or proc.pid is None:
                    continue
                try:
                    p = psutil.Process(proc.pid)
                    family = [p, *p.children(recursive=True)] if name == "postgres" else [p]
                    for member in family:
                        t = member.cpu_times()
                        total += t.user + t.system + t.children_user + t.children_system
                except psutil.NoSuchProcess:
                    continue
            out[name] = total
        return out

    async def phase_breakdown(self, run_id: str) -> dict[str, float]:
        """Median milliseconds per step spent in each phase, from the database's timestamps."""
        conn = await asyncpg.connect(self.sup.database_url)
        try:
            rows = await conn.fetch(
                "SELECT s.name, s.queued_at, a.claimed_at, a.finished_at AS ran,"
                " s.finished_at AS done FROM steps s JOIN step_attempts a"
                " ON a.run_id = s.run_id AND a.step = s.name AND a.attempt = s.attempt"
                " WHERE s.run_id = $1 ORDER BY s.queued_at",
                run_id,
            )
        finally:
            await conn.close()

        def ms(a: Any, b: Any) -> float:
            return float((b - a).total_seconds() * 1000)

        queue = [ms(r["queued_at"], r["claimed_at"]) for r in rows]
        run = [ms(r["claimed_at"], r["ran"]) for r in rows]
        upload = [ms(r["ran"], r["done"]) for r in rows]
        sched = [ms(a["done"], b["queued_at"]) for a, b in itertools.pairwise(rows)]
        return {
            "queue_and_data_ms": statistics.median(queue),
            "run_incl_process_start_ms": statistics.median(run),
            "upload_and_report_ms": statistics.median(upload),
            "scheduler_release_ms": statistics.median(sched) if sched else 0.0,
        }
