"""How step processes are started: forked from a warm fork server, or exec'd afresh.

Both give the same process: its own session and process group, output in the attempt's
files, the script run by ``boot.py`` under the runner's lease. The fork server saves the
interpreter start-up on every step (see ``forkserver.py``); exec is the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import structlog

__all__ = ["BOOT", "ExecLauncher", "ForkServerLauncher", "Launcher", "StepProcess"]

BOOT = Path(__file__).with_name("boot.py")
FORKSERVER = Path(__file__).with_name("forkserver.py")
_log = structlog.get_logger("headrace.step_runner")


class StepProcess(Protocol):
    pid: int

    async def wait(self) -> int: ...


class Launcher(Protocol):
    async def launch(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdout: Path, stderr: Path
    ) -> StepProcess: ...

    async def close(self) -> None: ...


class _Exec:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.pid = proc.pid

    async def wait(self) -> int:
        return await self.proc.wait()


class ExecLauncher:
    """A fresh ``python boot.py ...`` per step."""

    async def launch(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdout: Path, stderr: Path
    ) -> StepProcess:
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(BOOT),
                *argv,
                cwd=cwd,
                stdout=out,
                stderr=err,
                stdin=asyncio.subprocess.DEVNULL,
                env=dict(env),
                start_new_session=True,
            )
        return _Exec(proc)

    async def close(self) -> None:
        return None


class _Forked:
    def __init__(self, pid: int, launcher: ForkServerLauncher) -> None:
        self.pid = pid
        self._launcher = launcher

    async def wait(self) -> int:
        code = await asyncio.shield(self._launcher._exit_future(self.pid))
        self._launcher._exits.pop(self.pid, None)
        return code


class ForkServerLauncher:
    """Steps forked by one long-lived fork server; restarted if it dies."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pids: asyncio.Queue[int] = asyncio.Queue()
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._lock = asyncio.Lock()

    async def _ensure(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(FORKSERVER),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            self._reader = asyncio.create_task(self._read(self._proc))
        return self._proc

    def _exit_future(self, pid: int) -> asyncio.Future[int]:
        if pid not in self._exits:
            self._exits[pid] = asyncio.get_running_loop().create_future()
        return self._exits[pid]

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            msg = json.loads(line)
            if "pid" in msg:
                self._pids.put_nowait(int(msg["pid"]))
            elif "exit" in msg:
                fut = self._exit_future(int(msg["exit"]))
                if not fut.done():
                    fut.set_result(int(msg["code"]))
        # The fork server died: its children were reparented; report them lost.
        for fut in self._exits.values():
            if not fut.done():
                fut.set_result(-9)
        self._pids.put_nowait(-1)

    async def launch(
        self, argv: Sequence[str], cwd: Path, env: Mapping[str, str], stdout: Path, stderr: Path
    ) -> StepProcess:
        async with self._lock:
            proc = await self._ensure()
            assert proc.stdin is not None
            request = {
                "argv": list(argv),
                "cwd": str(cwd),
                "env": dict(env),
                "stdout": str(stdout),
                "stderr": str(stderr),
            }
            proc.stdin.write(json.dumps(request).encode() + b"\n")
            await proc.stdin.drain()
            pid = await asyncio.wait_for(self._pids.get(), timeout=30)
        if pid < 0:
            raise OSError("the step fork server exited; it is restarted for the next step")
        self._exit_future(pid)
        return _Forked(pid, self)

    async def close(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), timeout=5)
            if self._proc.returncode is None:
                self._proc.kill()
        if self._reader is not None:
            self._reader.cancel()
