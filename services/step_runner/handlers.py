"""Run one step attempt as a subprocess.

The attempt is claimed in PostgreSQL before the process starts, so a redelivered dispatch never
starts a second process. The script runs in its own process group (a timeout kills the whole
group), in a fresh working directory holding the snapshot, with arguments substituted as argv
(no shell), stdout and stderr captured to scratch. A command step's command line is turned
into processes by ``command``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import time
from pathlib import Path
from typing import Literal

import structlog

from contracts import events as ev
from contracts.envelope import DecodedEvent
from contracts.spec import DEFAULT_ENVIRONMENT
from services.runtime.errors import PermanentError
from services.runtime.mounts import unmount_under
from services.runtime.outbox import Delivery
from services.runtime.scratch import AttemptDir
from services.runtime.snapshots import materialise
from services.runtime.storage import ObjectStore, default_datastore, open_datastore
from services.step_runner import store
from services.step_runner.command import command_argv, command_environment
from services.step_runner.envcache import EnvironmentCache
from services.step_runner.errors import StepStartError
from services.step_runner.launcher import Launcher, StepProcess
from services.step_runner.lease import Lease, kept_lease
from services.step_runner.settings import StepRunnerSettings

__all__ = ["StepRunnerHandlers", "build_argv", "step_environment"]

_log = structlog.get_logger("headrace.step_runner")

#: variables of the service that a user's script must not see (connection strings)
_PRIVATE_PREFIXES = ("HEADRACE_DATABASE", "HEADRACE_KAFKA", "HEADRACE_EVENT_KEY")


def build_argv(script: Path, event: ev.StepDispatched, adir: AttemptDir) -> list[str]:
    """The boot shim's arguments: lease file, script, arguments with paths substituted."""
    inputs = {i.name: i.local_path for i in event.inputs}
    argv = [str(adir.lease), str(script)]
    for arg in event.arguments:
        kind, value = arg.get("kind"), arg.get("value") or arg.get("name", "")
        if kind == "literal":
            argv.append(value)
        elif kind == "input":
            if value in inputs:
                argv.append(inputs[value])
            elif any(name.startswith(f"{value}/") for name in inputs):
                argv.append(str(adir.inputs / value))  # a dataset of several paths
            else:
                raise StepStartError(f"argument names input {value!r}, which was not bound")
        elif kind == "output":
            if value not in {o.name for o in event.outputs}:
                raise StepStartError(f"argument names output {value!r}, which is not declared")
            argv.append(str(adir.outputs / value))
        else:
            raise StepStartError(f"unknown argument kind {kind!r}")
    return argv


def step_environment(event: ev.StepDispatched, adir: AttemptDir) -> dict[str, str]:
    """The process environment: the runner's, minus its secrets, plus the run context."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
    env.update(
        HEADRACE_RUN_ID=event.run_id,
        HEADRACE_STEP_NAME=event.step,
        HEADRACE_ATTEMPT=str(event.attempt),
        HEADRACE_METRICS_FILE=str(adir.metrics),
        PYTHONUNBUFFERED="1",
    )
    if event.datasets:
        env["HEADRACE_INPUT_DATASETS"] = json.dumps(_dataset_inputs(event))
    return command_environment(env, adir) if event.command else env


def _dataset_inputs(event: ev.StepDispatched) -> dict[str, dict[str, object]]:
    """What ``Run.get_context().input_datasets`` reads: each dataset input's kind, options,
    version and the local paths its files were bound to."""
    local = {i.name: i.local_path for i in event.inputs}
    return {
        d.name: {
            "kind": d.dataset_kind,
            "mode": d.mode,
            "name": d.dataset_name,
            "version": d.dataset_version,
            "options": d.options,
            "paths": [
                {"local": local[name], "datastore": src.datastore, "path": src.path}
                for name, src in d.bindings()
                if name in local
            ],
        }
        for d in event.datasets
    }


def _tail(path: Path, size: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


class StepRunnerHandlers:
    def __init__(
        self, settings: StepRunnerSettings, delivery: Delivery, launcher: Launcher
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.launcher = launcher
        self._store: ObjectStore | None = None
        self.environments = EnvironmentCache(settings.env_cache, settings.env_cache_bytes)
        self._environments: dict[str, store.EnvironmentRow] = {}

    async def _with_environment(
        self, event: ev.StepDispatched, env: dict[str, str], held: contextlib.AsyncExitStack
    ) -> dict[str, str]:
        """``env`` extended with the step's built environment, materialised from the store
        into the runner's cache (no package index involved) and held for the step."""
        if event.environment == DEFAULT_ENVIRONMENT:
            return env
        found = self._environments.get(event.environment)
        if found is None:
            found = await store.environment(self.delivery.pool, event.environment)
        if found is None:
            raise StepStartError(
                f"environment {event.environment!r} is not built; the image builder reports "
                "why in the run's events"
            )
        # A ready environment's row never changes (its key names its content): remember it
        # rather than ask the database before every step.
        self._environments[event.environment] = found
        here = ".".join(platform.python_version().split(".")[:2])
        if ".".join(found.python.split(".")[:2]) != here:
            raise StepStartError(
                f"environment {event.environment!r} was built for Python {found.python}; this "
                f"runner runs Python {here}: run runners and the image builder on one Python"
            )
        path = await held.enter_async_context(
            self.environments.use(found.digest, await self._datastore())
        )
        pythonpath = [str(path), *filter(None, [env.get("PYTHONPATH")])]
        return {
            **env,
            **found.env_vars,
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "HEADRACE_ENV_PATH": str(path),
            "HEADRACE_ENVIRONMENT": event.environment,
        }

    async def _datastore(self) -> ObjectStore:
        if self._store is None:
            self._store = open_datastore(await default_datastore(self.delivery.pool))
        return self._store

    async def _prepare(self, event: ev.StepDispatched, adir: AttemptDir) -> list[str]:
        snapshot = await materialise(await self._datastore(), event.snapshot, self.settings.cache)
        if adir.workdir.exists():
            shutil.rmtree(adir.workdir)
        await asyncio.to_thread(shutil.copytree, snapshot, adir.workdir)
        for target in event.outputs:
            (adir.outputs / target.name).mkdir(parents=True, exist_ok=True)
        if event.command:
            return command_argv(event, adir)
        script = adir.workdir / event.script_name
        if not script.resolve().is_relative_to(adir.workdir.resolve()):
            raise StepStartError(f"script {event.script_name!r} is outside the source directory")
        if not script.is_file():
            raise StepStartError(f"script {event.script_name!r} is not in the snapshot")
        return build_argv(script, event, adir)

    async def _supervise(
        self, event: ev.StepDispatched, proc: StepProcess, lease: Lease
    ) -> tuple[str, int | None, str | None]:
        """Wait for the process; kill its group on timeout, or when the scheduler took the
        attempt back (fenced or canceled). Returns (outcome, exit code, error)."""
        s = self.settings
        wait = asyncio.ensure_future(proc.wait())
        lost = asyncio.ensure_future(lease.lost.wait())
        try:
            done, _ = await asyncio.wait(
                {wait, lost}, timeout=event.timeout_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            if wait in done:
                code = wait.result()
                if code == 0:
                    return "succeeded", 0, None
                tail = _tail(
                    AttemptDir.of(s.scratch, event.run_id, event.step, event.attempt).stderr,
                    s.stderr_tail_bytes,
                )
                return "failed", code, f"exit code {code}" + (f"; stderr: {tail}" if tail else "")
            _kill_group(proc.pid)
            await wait
            if lost in done:
                return str(lease.status), None, f"attempt {lease.status} while running; killed"
            return "timed_out", None, f"timed out after {event.timeout_seconds} s"
        except asyncio.CancelledError:
            # The runner is stopping past its grace period: kill the step, hand it back.
            _kill_group(proc.pid)
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    store.release(
                        self.delivery.pool,
                        event.run_id,
                        event.step,
                        event.attempt,
                        "runner stopped",
                    )
                )
            raise
        finally:
            lost.cancel()

    async def _start_and_supervise(
        self,
        event: ev.StepDispatched,
        argv: list[str],
        env: dict[str, str],
        adir: AttemptDir,
        lease: Lease,
    ) -> tuple[str, int | None, str | None]:
        """Start the step's process, announce it, and supervise it to its end."""
        proc = await self.launcher.launch(argv, adir.workdir, env, adir.stdout, adir.stderr)
        lease.pid = proc.pid
        async with self.delivery.transaction(None) as tx:
            tx.emit(
                ev.StepAttemptStarted(
                    run_id=event.run_id,
                    step=event.step,
                    attempt=event.attempt,
                    runner_id=self.settings.runner_id,
                    pid=proc.pid,
                )
            )
        return await self._supervise(event, proc, lease)

    async def on_step_dispatched(self, event: ev.StepDispatched, decoded: DecodedEvent) -> None:
        s = self.settings
        if not await store.claim(
            self.delivery.pool,
            event.run_id,
            event.step,
            event.attempt,
            s.runner_id,
            s.lease_seconds,
        ):
            _log.info("step_runner.not_claimed")
            return
        adir = AttemptDir.of(s.scratch, event.run_id, event.step, event.attempt)
        adir.root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        exit_code: int | None = None
        error: str | None = None
        outcome = "error"
        # Holds the lease from the claim on, and the step's environment (not evictable),
        # until the process has ended.
        held = contextlib.AsyncExitStack()
        try:
            lease = await held.enter_async_context(
                kept_lease(
                    self.delivery.pool,
                    adir,
                    (event.run_id, event.step, event.attempt),
                    s.lease_seconds,
                    s.heartbeat_seconds,
                )
            )
            argv = await self._prepare(event, adir)
            env = await self._with_environment(event, step_environment(event, adir), held)
            if lease.lost.is_set():
                outcome = str(lease.status)  # taken back while preparing: never start it
            else:
                outcome, exit_code, error = await self._start_and_supervise(
                    event, argv, env, adir, lease
                )
        except (PermanentError, OSError) as exc:
            error = f"could not start the step: {exc}"
            adir.stderr.write_text(error + "\n")
        finally:
            await held.aclose()
            await _unmount_inputs(adir)
        if outcome in ("fenced", "canceled"):
            _log.info("step_runner.stopped_by_scheduler", status=outcome)
            return
        result: Literal["succeeded", "failed", "timed_out", "error"] = (
            outcome if outcome in ("succeeded", "failed", "timed_out") else "error"  # type: ignore[assignment]
        )
        async with self.delivery.transaction(decoded) as tx:
            if not await store.finish(
                tx.conn, event.run_id, event.step, event.attempt, result, exit_code, error
            ):
                _log.info("step_runner.result_fenced")
                return
            tx.emit(
                ev.StepAttemptFinished(
                    run_id=event.run_id,
                    step=event.step,
                    attempt=event.attempt,
                    runner_id=s.runner_id,
                    outcome=result,
                    exit_code=exit_code,
                    duration_ms=int((time.monotonic() - started) * 1000),
                    error=error,
                ),
                ev.ArtifactUploadRequested(
                    run_id=event.run_id,
                    step=event.step,
                    attempt=event.attempt,
                    outputs=event.outputs if result == "succeeded" else [],
                    outcome=result,
                    exit_code=exit_code,
                    error=error,
                ),
            )
        _log.info("step_runner.finished", outcome=result, exit_code=exit_code)


async def _unmount_inputs(adir: AttemptDir) -> None:
    """Unmount the attempt's FUSE-mounted inputs (rclone mounts made by the data mounter),
    whatever the step's outcome.

    Why here and now: the process that read through the mounts has exited, and the rclone
    daemons would otherwise outlive the attempt; the uploader then removes scratch, which must
    not walk into a live mount. Called before the result is recorded, so no early return of
    the handler can skip it. A failure is logged, not raised: the step's result stands.
    """
    for failure in await unmount_under(adir.root):
        _log.warning("step_runner.unmount_failed", detail=failure)


def _kill_group(pid: int) -> None:
    """Kill the step's whole process group (its children too)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
