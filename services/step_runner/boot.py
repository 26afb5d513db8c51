"""Start a step script under a lease it enforces itself.

``python .../services/step_runner/boot.py LEASE_FILE SCRIPT [ARGS...]`` runs ``SCRIPT`` as
``__main__`` after starting a daemon thread that reads ``LEASE_FILE`` (a Unix time written by
the runner at each heartbeat). When the lease is about to lapse without renewal (the runner was
killed, frozen or cut off), the thread kills the step's whole process group, so a step never
runs on after the scheduler may have given it to another runner. Standard library only: this
runs in every step process, before the user's imports. It is started by path (not ``-m``)
and executes the script itself rather than through ``runpy``: that keeps a no-op step's start
close to the interpreter's own start-up.

``boot.py LEASE_FILE --command N ARGV...`` (a ``CommandStep``) starts N processes of ARGV
under the same guard instead, each told its rank when N is above one.
"""

from __future__ import annotations

import builtins
import importlib
import os
import signal
import site
import sys
import threading
import time
import types

__all__ = ["main"]

#: the step dies this long before its lease would lapse, to stay clear of the new attempt
MARGIN_SECONDS = 1.0


def _lease_until(path: str) -> float | None:
    try:
        with open(path) as f:
            return float(f.read().strip() or "nan")
    except (OSError, ValueError):
        return None


def _guard(path: str, interval: float) -> None:
    while True:
        until = _lease_until(path)
        if until is not None and time.time() > until - MARGIN_SECONDS:
            sys.stderr.write("headrace: the runner stopped renewing this step's lease; stopping\n")
            sys.stderr.flush()
            os.killpg(os.getpgrp(), signal.SIGKILL)
        time.sleep(interval)


def _add_environment(path: str) -> None:
    """Put a step environment's packages (a ``--target`` tree) ahead of the runner's.

    A forked step inherits the fork server's ``sys.path``, so ``PYTHONPATH`` alone would not
    reach it; ``addsitedir`` also runs the tree's ``.pth`` files, as an installed venv would.
    """
    if not path:
        return
    if path not in sys.path:
        sys.path.insert(1, path)
    site.addsitedir(path)


class _AzuremlOnFirstImport:
    """Unmodified Azure ML v1 step scripts do ``from azureml.core import Run``.

    Placed last on ``sys.meta_path``, so a real ``azureml`` installed in the step's
    environment still wins: only when none is found is the import handed to headrace's alias
    (``headrace.azureml_alias``, loaded by name at that moment, so a step that never imports
    ``azureml`` pays nothing and this shim stays standard library only).
    """

    @classmethod
    def find_spec(cls, fullname: str, path: object = None, target: object = None) -> object:
        if fullname != "azureml" and not fullname.startswith("azureml."):
            return None
        sys.meta_path.remove(cls)  # type: ignore[arg-type]
        alias = importlib.import_module("headrace.azureml_alias")
        return alias.install().find_spec(fullname, path, target)


def _rank_variables(rank: int, count: int, port: int) -> dict[str, str]:
    """What a process of a multi-process step is told (torch.distributed's names and Open
    MPI's), all on this one node."""
    return {
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(count),
        "LOCAL_WORLD_SIZE": str(count),
        "NODE_RANK": "0",
        "GROUP_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "OMPI_COMM_WORLD_RANK": str(rank),
        "OMPI_COMM_WORLD_SIZE": str(count),
        "OMPI_COMM_WORLD_LOCAL_RANK": str(rank),
        "OMPI_COMM_WORLD_LOCAL_SIZE": str(count),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_command(count: int, argv: list[str]) -> int:
    """Start ``count`` processes of ``argv`` (with rank variables when more than one) in this
    process group and wait for all; the first to fail stops the others and gives the code.

    Why the processes stay in this group: the runner's timeout and the lease guard kill the
    group, which then takes every rank with it.
    """
    import subprocess

    port = _free_port() if count > 1 else 0
    procs: dict[int, subprocess.Popen[bytes]] = {}
    for rank in range(count):
        env = dict(os.environ)
        if count > 1:
            env.update(_rank_variables(rank, count, port))
        try:
            proc = subprocess.Popen(argv, env=env)
        except OSError as exc:
            sys.stderr.write(f"headrace: cannot start {argv[0]!r}: {exc}\n")
            for other in procs.values():
                other.kill()
            return 127
        procs[proc.pid] = proc
    code = 0
    while procs:
        pid, status = os.wait()
        if pid not in procs:
            continue
        proc = procs.pop(pid)
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        if rc != 0 and code == 0:
            code = rc if rc > 0 else 128 - rc
            for other in procs.values():
                other.terminate()
    return code


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: boot.py LEASE_FILE SCRIPT [ARGS...] | LEASE_FILE --command N ARGV...")
    lease_file, script, *args = argv
    threading.Thread(target=_guard, args=(lease_file, 0.2), daemon=True).start()
    if script == "--command":
        sys.exit(run_command(int(args[0]), args[1:]))
    _add_environment(os.environ.get("HEADRACE_ENV_PATH", ""))
    sys.meta_path.append(_AzuremlOnFirstImport)  # type: ignore[arg-type]
    sys.argv = [script, *args]
    # As `python SCRIPT` would: the script's directory first on the path, not this file's.
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    with open(script, "rb") as f:
        code = compile(f.read(), script, "exec")
    # A fresh __main__ for the script; this module's globals stay alive for the guard thread.
    module = types.ModuleType("__main__")
    module.__file__ = script
    module.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = module
    exec(code, module.__dict__)  # noqa: S102 - running the user's step script is the point


if __name__ == "__main__":
    main(sys.argv[1:])
