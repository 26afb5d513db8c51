"""The embedded stack's supervisor: starts everything, restarts what dies, stops in order.

Runs in the foreground (``headrace up --foreground``) or detached (``headrace up``). Order:
PostgreSQL, the broker, migrations and topics, the workspace bootstrap, then every service
as its own process (``headrace serve NAME``) with a configurable number of step runners.

Compute targets registered through the API (``ComputeTarget.create``) get runners of their
own: the supervisor reads the registered targets at start and then every second, and starts
``min_nodes`` runners (at least one) for each target that has fewer. It only ever adds
runners; the pool's ``max_nodes`` is the bound an autoscaler would use, not this one.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from contracts.spec import DEFAULT_COMPUTE_TARGET
from headrace.stack.broker import Broker
from headrace.stack.layout import Layout
from headrace.stack.ports import free_port, port_open
from headrace.stack.postgres import EmbeddedPostgres
from headrace.stack.process import Child

__all__ = ["SERVICES", "StackOptions", "Supervisor", "runners_wanted", "service_env"]

SERVICES = (
    "scheduler",
    "snapshotter",
    "image_builder",
    "data_mounter",
    "artifact_uploader",
    "schedule_firer",
    "step_runner",
    "api",
)
_log = structlog.get_logger("headrace.stack")
#: seconds between two reads of the registered compute targets
POOL_SYNC_SECONDS = 1.0


def runners_wanted(targets: dict[str, dict[str, Any]], local: str) -> dict[str, int]:
    """How many runners each registered target needs, ``local`` (the ``--runners`` pool)
    excepted: ``min_nodes``, at least one, so that a new target's steps always have a runner
    (Azure ML's ``min_nodes=0`` scales to zero, which only an autoscaler can undo)."""
    wanted = {}
    for name, config in targets.items():
        if name == local:
            continue
        try:
            count = int(config.get("min_nodes", 0))
        except (TypeError, ValueError):
            count = 0
        wanted[name] = max(1, count)
    return wanted


@dataclass(frozen=True)
class StackOptions:
    """What to start and on which ports (None: reuse the last ports, else pick free ones)."""

    runners: int = 2
    api_port: int | None = None
    broker_port: int | None = None
    pg_port: int | None = None
    topic_prefix: str = "headrace."


def service_env(
    layout: Layout, bootstrap: str, db_url: str, prefix: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a service process: connection settings as ``HEADRACE_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    env.update(
        HEADRACE_KAFKA_BOOTSTRAP=bootstrap,
        HEADRACE_DATABASE_URL=db_url,
        HEADRACE_TOPIC_PREFIX=prefix,
        HEADRACE_HOME=str(layout.home),
        HEADRACE_EVENT_KEY=layout.event_key(),
        **(extra or {}),
    )
    return env


class Supervisor:
    """Owns the processes of one embedded stack."""

    def __init__(self, home: Path, options: StackOptions) -> None:
        self.layout = Layout(home)
        self.options = options
        ports = self._ports()
        self.broker = Broker(self.layout.log("broker"), ports["broker"])
        self.postgres = EmbeddedPostgres(
            self.layout.pg_data, self.layout.log("postgres"), ports["postgres"]
        )
        self.api_port = ports["api"]
        self.services: list[Child] = []
        self.token = ""
        self._stop = threading.Event()
        self.restarts: dict[str, int] = {}
        #: runners started so far per registered compute target (``local`` excepted)
        self.pools: dict[str, int] = {}

    def _ports(self) -> dict[str, int]:
        saved: dict[str, Any] = {}
        try:
            import json

            saved = json.loads(self.layout.ports_file.read_text())
        except (OSError, ValueError):
            pass
        o = self.options

        def pick(name: str, given: int | None) -> int:
            if given:
                return given
            old = saved.get(name)
            if isinstance(old, int) and not port_open(old):
                return old
            return free_port()

        ports = {
            "broker": pick("broker", o.broker_port),
            "postgres": pick("postgres", o.pg_port),
            "api": pick("api", o.api_port),
        }
        self.layout.write_json(self.layout.ports_file, ports)
        return ports

    @property
    def database_url(self) -> str:
        return self.postgres.url_for("headrace")

    def _prepare(self) -> None:
        from services.runtime.bootstrap import bootstrap_workspace
        from services.runtime.bus import ensure_topics
        from services.runtime.db import migrate
        from services.runtime.settings import RuntimeSettings

        settings = RuntimeSettings(
            kafka_bootstrap=self.broker.bootstrap,
            database_url=self.database_url,
            topic_prefix=self.options.topic_prefix,
            home=self.layout.home,
        )

        async def run() -> None:
            await migrate(settings.database_url)
            await bootstrap_workspace(settings)
            # Every registered target's topic: the embedded broker forgets them on restart.
            await ensure_topics(settings, sorted(await self._registered_targets()))
            self.token = await self._local_token(settings.database_url)

        asyncio.run(run())

    async def _registered_targets(self) -> dict[str, dict[str, Any]]:
        """Compute targets in the database, with their configs."""
        import asyncpg

        conn = await asyncpg.connect(self.database_url)
        try:
            rows = await conn.fetch("SELECT name, config::text AS config FROM compute_targets")
        finally:
            await conn.close()
        return {r["name"]: json.loads(r["config"]) for r in rows}

    def _runner(self, env: dict[str, str], target: str, i: int) -> Child:
        """A step runner of ``target`` (the ``local`` ones keep their historic names)."""
        name = (
            f"step_runner-{i}" if target == DEFAULT_COMPUTE_TARGET else f"step_runner-{target}-{i}"
        )
        runner_id = f"runner-{i}" if target == DEFAULT_COMPUTE_TARGET else f"{target}-runner-{i}"
        return Child(
            name,
            [sys.executable, "-m", "headrace", "serve", "step_runner"],
            self.layout.log(name),
            env={**env, "HEADRACE_RUNNER_ID": runner_id, "HEADRACE_COMPUTE_TARGET": target},
        )

    def sync_pools(self) -> list[str]:
        """Start the runners registered targets lack; returns the names of those started."""
        wanted = runners_wanted(asyncio.run(self._registered_targets()), DEFAULT_COMPUTE_TARGET)
        env = service_env(
            self.layout, self.broker.bootstrap, self.database_url, self.options.topic_prefix
        )
        started = []
        for target, count in sorted(wanted.items()):
            for i in range(self.pools.get(target, 0) + 1, count + 1):
                child = self._runner(env, target, i)
                child.start()
                self.services.append(child)
                started.append(child.name)
            self.pools[target] = max(count, self.pools.get(target, 0))
        if started:
            _log.info("stack.runners_started", runners=started)
            self.write_state(ready=True)
        return started

    async def _local_token(self, database_url: str) -> str:
        """The local user's admin token: the one in the config if still valid, else a new one."""
        import asyncpg

        from services.runtime.tokens import TokenRefused, create_token, verify_token

        previous = self.layout.read_json(self.layout.config_file).get("token")
        conn = await asyncpg.connect(database_url)
        try:
            try:
                await verify_token(conn, previous, "admin")
                return str(previous)
            except TokenRefused:
                token, _ = await create_token(conn, "local-user", ["admin"])
                return token
        finally:
            await conn.close()

    def _children(self) -> list[Child]:
        env = service_env(
            self.layout, self.broker.bootstrap, self.database_url, self.options.topic_prefix
        )
        out = []
        for name in SERVICES:
            if name == "step_runner":
                for i in range(1, self.options.runners + 1):
                    out.append(self._runner(env, DEFAULT_COMPUTE_TARGET, i))
                continue
            extra = {"HEADRACE_API_PORT": str(self.api_port)} if name == "api" else {}
            out.append(
                Child(
                    name,
                    [sys.executable, "-m", "headrace", "serve", name],
                    self.layout.log(name),
                    env={**env, **extra},
                )
            )
        return out

    def write_state(self, ready: bool) -> None:
        comps: list[dict[str, Any]] = [
            {
                "name": "postgres",
                "pid": self.postgres.child.pid if self.postgres.child else None,
                "address": f"127.0.0.1:{self.postgres.port}",
                "log": str(self.postgres.log_path),
            },
            {
                "name": "broker",
                "pid": self.broker.child.pid,
                "address": self.broker.bootstrap,
                "log": str(self.broker.child.log),
            },
        ]
        for c in self.services:
            address = f"http://127.0.0.1:{self.api_port}" if c.name == "api" else ""
            comps.append({"name": c.name, "pid": c.pid, "address": address, "log": str(c.log)})
        self.layout.write_json(
            self.layout.state_file,
            {
                "supervisor_pid": os.getpid(),
                "ready": ready,
                "started_at": time.time(),
                "api_url": f"http://127.0.0.1:{self.api_port}",
                "kafka_bootstrap": self.broker.bootstrap,
                "database_url": self.database_url,
                "topic_prefix": self.options.topic_prefix,
                "runners": self.options.runners,
                "components": comps,
            },
        )

    def start(self) -> None:
        """Start everything; returns once the API answers."""
        self.layout.home.mkdir(parents=True, exist_ok=True)
        self.write_state(ready=False)
        self.postgres.start()
        self.postgres.ensure_database("headrace")
        self.write_state(ready=False)
        self.broker.start()
        self.write_state(ready=False)
        self._prepare()
        self.services = self._children()
        for child in self.services:
            child.start()
        self._wait_for_api()
        self.sync_pools()
        self.layout.write_json(
            self.layout.config_file,
            {
                "workspace": "local",
                "api_url": f"http://127.0.0.1:{self.api_port}",
                "home": str(self.layout.home),
                "token": self.token,
            },
        )
        self.write_state(ready=True)
        _log.info(
            "stack.ready", api=f"http://127.0.0.1:{self.api_port}", runners=self.options.runners
        )

    def _wait_for_api(self, timeout: float = 60.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.api_port}/api/v1/healthz"
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the API did not answer within {timeout} s; see {self.layout.logs}")

    def watch(self) -> None:
        """Restart services that exit unexpectedly, until asked to stop."""
        next_try: dict[str, float] = {}
        next_sync = time.monotonic() + POOL_SYNC_SECONDS
        while not self._stop.wait(0.5):
            if time.monotonic() >= next_sync:
                next_sync = time.monotonic() + POOL_SYNC_SECONDS
                try:
                    self.sync_pools()
                except Exception as exc:
                    # PostgreSQL restarting, say: the supervisor must go on supervising.
                    _log.warning("stack.pool_sync_failed", error=f"{type(exc).__name__}: {exc}")
            if not self.broker.child.alive():
                # The embedded broker keeps everything in memory: it comes back empty, so the
                # topics are created again; services re-send what was lost (watchdog, relay).
                _log.warning("stack.broker_restarted")
                self.broker.start()
                self._prepare()
            for child in self.services:
                if child.alive():
                    continue
                now = time.monotonic()
                if now < next_try.get(child.name, 0):
                    continue
                n = self.restarts.get(child.name, 0) + 1
                self.restarts[child.name] = n
                next_try[child.name] = now + min(30.0, 0.5 * 2 ** min(n, 6))
                code = child.proc.returncode if child.proc else None
                _log.warning(
                    "stack.service_restarted", service=child.name, exit_code=code, restarts=n
                )
                child.start()
                self.write_state(ready=True)

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Services (in reverse order), then the broker, then PostgreSQL."""
        self._stop.set()
        for child in reversed(self.services):
            child.send(signal.SIGTERM)
        for child in reversed(self.services):
            child.stop(grace=15)
        self.broker.stop()
        self.postgres.stop()
        self.layout.state_file.unlink(missing_ok=True)
        _log.info("stack.stopped")


def run_foreground(home: Path, options: StackOptions) -> int:
    """Start, watch until SIGTERM/SIGINT, stop. The detached ``headrace up`` runs this."""
    sup = Supervisor(home, options)
    signal.signal(signal.SIGTERM, sup.request_stop)
    signal.signal(signal.SIGINT, sup.request_stop)
    try:
        sup.start()
        sup.watch()
    except Exception as exc:
        _log.error("stack.failed", error=str(exc))
        sup.stop()
        return 1
    sup.stop()
    return 0
