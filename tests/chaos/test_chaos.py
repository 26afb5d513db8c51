"""Chaos: pipelines of 150+ steps survive killed services, a broker that restarts empty, a
PostgreSQL restart and a frozen runner, with no step lost, duplicated or run twice at once.

Every service runs as its own process, as in the embedded stack. A driver injects faults at
random moments while the runs progress; then the suite checks the side-effect ledger the steps
wrote, the committed outputs, the public events and the dead-letter topic, and prints a table.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import shutil
import signal
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import decode
from contracts.snapshot import ManifestEntry, SnapshotManifest, digest_bytes
from contracts.topics import Topics
from headrace.stack.broker import Broker
from headrace.stack.layout import Layout
from headrace.stack.ports import free_port
from headrace.stack.postgres import EmbeddedPostgres
from headrace.stack.process import Child
from headrace.stack.supervisor import service_env
from services.runtime.bootstrap import bootstrap_workspace
from services.runtime.bus import ensure_topics
from services.runtime.db import migrate
from services.runtime.settings import RuntimeSettings
from services.runtime.tokens import create_token
from tests.helpers import eventually
from tests.integration.kafka_tools import read_all

pytestmark = pytest.mark.chaos

LEASE = 3.0
SERVICES = ("scheduler", "snapshotter", "image_builder", "data_mounter", "artifact_uploader", "api")
RUNNERS = 3
PREFIX = "chaos."


@dataclass
class Cluster:
    home: Path
    broker: Broker
    pg: EmbeddedPostgres
    api_port: int
    children: dict[str, Child] = field(default_factory=dict)
    faults: list[tuple[float, str]] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    restarted: list[str] = field(default_factory=list)
    token: str = ""

    @property
    def db_url(self) -> str:
        return self.pg.url_for("headrace")

    def settings(self) -> RuntimeSettings:
        return RuntimeSettings(
            kafka_bootstrap=self.broker.bootstrap,
            database_url=self.db_url,
            topic_prefix=PREFIX,
            home=self.home,
        )

    async def supervise(self) -> None:
        """Restart services that exit, as the embedded stack's supervisor does."""
        while True:
            await asyncio.sleep(0.5)
            for name, child in list(self.children.items()):
                if not child.alive():
                    self.restarted.append(name)
                    self.spawn(name)

    def fault(self, what: str) -> None:
        self.faults.append((round(time.monotonic() - self.t0, 1), what))

    def spawn(self, name: str) -> Child:
        service = "step_runner" if name.startswith("runner") else name
        env = service_env(
            Layout(self.home),
            self.broker.bootstrap,
            self.db_url,
            PREFIX,
            {
                "HEADRACE_API_PORT": str(self.api_port),
                "HEADRACE_RUNNER_ID": name,
                "HEADRACE_LEASE_SECONDS": str(LEASE),
                "HEADRACE_HEARTBEAT_SECONDS": "0.5",
                "HEADRACE_WATCHDOG_SECONDS": "0.5",
                "HEADRACE_REDELIVER_AFTER_SECONDS": "4",
                "HEADRACE_CONSUMER_SESSION_TIMEOUT_MS": "3000",
                "HEADRACE_LOG_LEVEL": "info",
            },
        )
        child = Child(
            name,
            [sys.executable, "-m", "headrace", "serve", service],
            self.home / "logs" / f"{name}.log",
            env=env,
        )
        child.start()
        self.children[name] = child
        return child


async def _prepare(c: Cluster) -> None:
    await migrate(c.db_url)
    await ensure_topics(c.settings(), ["local"])
    await bootstrap_workspace(c.settings())
    conn = await asyncpg.connect(c.db_url)
    try:
        c.token, _ = await create_token(conn, "chaos", ["admin"])
    finally:
        await conn.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    home = tmp_path / "home"
    broker = Broker(log_path=home / "logs" / "broker.log", port=free_port())
    pg_root = Path(tempfile.mkdtemp(prefix="headrace-chaos-pg-"))  # see tests/conftest.py
    pg = EmbeddedPostgres(
        data_dir=pg_root / "pg", log_path=home / "logs" / "pg.log", port=free_port(), fast=True
    )
    await asyncio.to_thread(pg.start)
    await asyncio.to_thread(pg.ensure_database, "headrace")
    await asyncio.to_thread(broker.start)
    c = Cluster(home, broker, pg, free_port())
    await _prepare(c)
    for name in (*SERVICES, *(f"runner-{i}" for i in range(RUNNERS))):
        c.spawn(name)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{c.api_port}") as http:

            async def api_up() -> bool:
                try:
                    return (await http.get("/api/v1/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(api_up, timeout=60)
        yield c
    finally:
        for child in c.children.values():
            child.send(signal.SIGCONT)
            child.send(signal.SIGTERM)
        for child in c.children.values():
            await asyncio.to_thread(child.stop, 10)
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(pg_root, ignore_errors=True)


# -- pipelines --------------------------------------------------------------------------


def _step(name: str, snap: str, ledger: Path, ups: list[str], out: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "script_name": "step_script.py",
        "snapshot": snap,
        "arguments": [
            {"kind": "literal", "value": str(ledger)},
            {"kind": "output", "name": f"o_{name}"},
            *({"kind": "input", "name": f"o_{u}"} for u in ups),
        ],
        "inputs": [{"kind": "pipeline_data", "name": f"o_{u}"} for u in ups],
        "outputs": [{"name": f"o_{name}"}] if out else [],
    }


def pipelines(snap: str, ledger: Path) -> dict[str, list[dict[str, Any]]]:
    chain = [_step("c0", snap, ledger, [])] + [
        _step(f"c{i}", snap, ledger, [f"c{i - 1}"]) for i in range(1, 40)
    ]
    fan = [_step("root", snap, ledger, [])] + [
        _step(f"f{i}", snap, ledger, ["root"]) for i in range(60)
    ]
    fan.append(_step("join", snap, ledger, [f"f{i}" for i in range(60)]))
    diamond = [_step("top", snap, ledger, [])]
    diamond += [_step(f"a{i}", snap, ledger, ["top"]) for i in range(25)]
    diamond += [_step(f"b{i}", snap, ledger, [f"a{i}", f"a{(i + 1) % 25}"]) for i in range(25)]
    diamond.append(_step("bottom", snap, ledger, [f"b{i}" for i in range(25)]))
    return {"chain": chain, "fan": fan, "diamond": diamond}


def expected_values(steps: list[dict[str, Any]]) -> dict[str, str]:
    ups = {s["name"]: [i["name"][2:] for i in s["inputs"]] for s in steps}
    values: dict[str, str] = {}

    def value(name: str) -> str:
        if name not in values:
            h = hashlib.sha256(name.encode())
            for u in sorted(ups[name], key=lambda u: f"o_{u}"):
                h.update(value(u).encode())
            values[name] = h.hexdigest()
        return values[name]

    for s in steps:
        value(s["name"])
    return values


# -- faults -------------------------------------------------------------------------------


async def _running_runner(c: Cluster, conn: asyncpg.Connection) -> str | None:
    row = await conn.fetchrow(
        "SELECT runner_id FROM step_attempts WHERE status = 'running' ORDER BY random() LIMIT 1"
    )
    return row["runner_id"] if row else None


async def inject_faults(c: Cluster, done: asyncio.Event) -> None:
    rng = random.Random(7)
    plan: list[str] = [*SERVICES, "runner_mid_step", "broker", "postgres", "freeze_runner"]
    rng.shuffle(plan)
    # last, so that no broker restart (which empties the embedded broker) erases its trace
    plan.append("poison")
    conn = await asyncpg.connect(c.db_url)
    try:
        for what in plan:
            if done.is_set():
                break
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            if what in SERVICES:
                c.children[what].send(signal.SIGKILL)
                c.fault(f"SIGKILL {what}")
            elif what == "runner_mid_step":
                name = None
                for _ in range(100):
                    name = await _running_runner(c, conn)
                    if name:
                        break
                    await asyncio.sleep(0.05)
                name = name or "runner-0"
                c.children[name].send(signal.SIGKILL)
                c.fault(f"SIGKILL {name} mid-step")
            elif what == "broker":
                await asyncio.to_thread(c.broker.stop)
                c.fault("broker restarted empty")
                await asyncio.to_thread(c.broker.start)
                await ensure_topics(c.settings(), ["local"])  # as the supervisor does
            elif what == "postgres":
                await conn.close()
                await asyncio.to_thread(c.pg.stop)
                c.fault("PostgreSQL restarted")
                await asyncio.sleep(0.5)
                await asyncio.to_thread(c.pg.start)
                conn = await asyncpg.connect(c.db_url)
            elif what == "poison":
                await _produce_poison(c)
                c.fault("poison record (5 MB, malformed) on runs.requested")
            elif what == "freeze_runner":
                name = await _running_runner(c, conn) or "runner-1"
                c.children[name].send(signal.SIGSTOP)
                c.fault(f"SIGSTOP {name} for {LEASE + 2:.0f} s")
                await asyncio.sleep(LEASE + 2)
                c.children[name].send(signal.SIGCONT)
    finally:
        await conn.close()


async def _produce_poison(c: Cluster) -> None:
    """A record too large to dead-letter whole and that no decoder accepts."""
    producer = AIOKafkaProducer(
        bootstrap_servers=c.broker.bootstrap, max_request_size=8 * 1024 * 1024
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            Topics(PREFIX).run_requests,
            b"{" + b"x" * (5 * 1024 * 1024),
            key=b"poison",
            headers=[("ce_id", b"poison-1"), ("ce_type", b"headrace.run.requested.v1")],
        )
    finally:
        await producer.stop()


# -- checks -------------------------------------------------------------------------------


def ledger_intervals(ledger: Path, run_id: str) -> Iterator[tuple[str, int, float, float, bool]]:
    """(step, attempt, first time, last time, ended normally) per attempt process."""
    for f in (ledger / run_id).glob("*"):
        step, attempt, _pid = f.name.rsplit(".", 2)
        times, ended = [], False
        for line in f.read_text().splitlines():
            kind, _, t = line.partition(" ")
            try:
                times.append(float(t))
            except ValueError:
                continue
            ended = ended or kind == "end"
        if times:
            yield step, int(attempt), min(times), max(times), ended


async def test_nothing_is_lost_or_duplicated_under_faults(cluster: Cluster, tmp_path: Path) -> None:
    """Every run completes with exact outputs despite every kind of fault (summary printed)."""
    c = cluster
    ledger = tmp_path / "ledger"
    http = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{c.api_port}/api/v1",
        timeout=30,
        headers={"Authorization": f"Bearer {c.token}"},
    )
    script = (Path(__file__).parent / "step_script.py").read_bytes()
    digest = digest_bytes(script)
    manifest = SnapshotManifest(
        files=[ManifestEntry(path="step_script.py", digest=digest, size=len(script))]
    )
    assert (await http.put(f"/blobs/{digest}", content=script)).status_code == 201
    assert (
        await http.put(f"/blobs/{manifest.digest}", content=manifest.canonical_bytes())
    ).status_code == 201
    specs = pipelines(manifest.digest, ledger)
    runs: dict[str, str] = {}
    for name, steps in specs.items():
        r = await http.post(
            "/runs", json={"experiment": f"chaos-{name}", "pipeline": {"steps": steps}}
        )
        assert r.status_code == 201, r.text
        runs[name] = r.json()["run_id"]
    total_steps = sum(len(s) for s in specs.values())
    assert total_steps >= 150

    done = asyncio.Event()
    supervisor = asyncio.create_task(c.supervise())
    faults = asyncio.create_task(inject_faults(c, done))
    conn = None
    try:

        async def all_terminal() -> bool:
            try:
                statuses = [
                    (await http.get(f"/runs/{rid}")).json()["status"] for rid in runs.values()
                ]
            except (httpx.HTTPError, KeyError, ValueError):
                return False
            return all(s in ("Completed", "Failed", "Canceled") for s in statuses)

        await eventually(all_terminal, timeout=240, interval=0.5)
        done.set()
        await faults
        conn = await asyncpg.connect(c.db_url)
        details = {n: (await http.get(f"/runs/{rid}")).json() for n, rid in runs.items()}
        assert {n: d["status"] for n, d in details.items()} == dict.fromkeys(runs, "Completed")

        # outputs: exactly one committed per step, with the value the DAG implies
        wrong = []
        for name, steps in specs.items():
            rid = runs[name]
            want = expected_values(steps)
            rows = await conn.fetch(
                "SELECT step, name, path FROM step_outputs WHERE run_id = $1", rid
            )
            assert len(rows) == len(steps)
            root = c.home / "datastores" / "workspaceblobstore"
            for row in rows:
                got = (root / row["path"] / "value").read_text()
                if got != want[row["step"]]:
                    wrong.append((name, row["step"]))
        assert wrong == []

        # ledger: no two attempts of a step overlapping; nothing ran after its fence
        overlaps, after_fence, executions = [], [], 0
        fenced = {
            (r["run_id"], r["step"], r["attempt"]): r["finished_at"].timestamp()
            for r in await conn.fetch(
                "SELECT run_id, step, attempt, finished_at FROM step_attempts"
                " WHERE status = 'fenced'"
            )
        }
        for rid in runs.values():
            by_step: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
            for step, attempt, first, last, _ended in ledger_intervals(ledger, rid):
                executions += 1
                by_step[step].append((first, last, attempt))
                if (rid, step, attempt) in fenced and last > fenced[(rid, step, attempt)] + 0.05:
                    after_fence.append((rid, step, attempt))
            for step, spans in by_step.items():
                spans.sort()
                for (_a0, a1, n), (b0, _b1, m) in itertools.pairwise(spans):
                    if b0 < a1 and n != m:
                        overlaps.append((rid, step, n, m))
        assert overlaps == []
        assert after_fence == []

        # public events: per run, causal order of what the topic holds
        topics = Topics(PREFIX)
        records = await read_all(c.broker.bootstrap, topics.public)
        per_run: dict[str, list[Any]] = defaultdict(list)
        for k, v, h in records:
            ev = decode(k, v, list(h.items())).event
            per_run[ev.run_id].append(ev)
        order_problems = []
        for rid in runs.values():
            events = per_run.get(rid, [])
            types = [e.type for e in events]
            if "headrace.run.completed.v1" in types and types[-1] != "headrace.run.completed.v1":
                order_problems.append((rid, "events after RunCompleted"))
            started = {(e.step, e.attempt) for e in events if e.type == "headrace.step.started.v1"}
            seen_started: set[tuple[str, int]] = set()
            for e in events:
                if e.type == "headrace.step.started.v1":
                    seen_started.add((e.step, e.attempt))
                if (
                    e.type == "headrace.step.completed.v1"
                    and (e.step, e.attempt) in started
                    and (e.step, e.attempt) not in seen_started
                ):
                    order_problems.append((rid, f"{e.step} completed before started"))
        assert order_problems == []
        poisoned = any(what.startswith("poison") for _, what in c.faults)
        dead: list[Any] = []

        async def poison_dead_lettered() -> bool:
            dead[:] = await read_all(c.broker.bootstrap, topics.deadletter)
            return len(dead) >= int(poisoned)

        await eventually(poison_dead_lettered, timeout=30)
        # nothing but the poison record, and that one by reference (it is too large)
        assert [h.get("x-headrace-dlq-reference") for _, _, h in dead] == [b"1"] * int(poisoned)
        lost = [n for n, d in details.items() if d["status"] != "Completed"]

        attempts = await conn.fetchval("SELECT count(*) FROM step_attempts")
        retried = await conn.fetchval("SELECT count(*) FROM steps WHERE attempt > 1")
        injected = {what.split(" ")[1] if what.startswith("SIG") else what for _, what in c.faults}
        print("\n\nchaos summary")
        print(f"{'t (s)':>6}  fault")
        for t, what in c.faults:
            print(f"{t:>6}  {what}")
        print(
            f"runs {len(runs)} completed {len(runs)}; steps {total_steps}; attempts {attempts};"
            f" steps retried {retried}; script executions {executions};"
            f" service restarts {len(c.restarted)}"
        )
        print(
            f"leases fenced {len(fenced)}; duplicates found (overlapping attempts) "
            f"{len(overlaps)}; ran after fence {len(after_fence)}; "
            f"wrong or missing outputs {len(wrong)}; lost runs {len(lost)}; "
            f"dead letters {len(dead)}; public events checked {len(records)}"
        )
        assert len(c.faults) >= len(SERVICES) + 4, injected
        assert fenced, "no lease was fenced: the runner faults did not hit a running step"
    finally:
        done.set()
        supervisor.cancel()
        if not faults.done():
            faults.cancel()
        if conn is not None:
            await conn.close()
        await http.aclose()
