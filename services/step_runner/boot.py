"""Start a step script under a lease it enforces itself.

``python -m services.step_runner.boot LEASE_FILE SCRIPT [ARGS...]`` runs ``SCRIPT`` as
``__main__`` after starting a daemon thread that reads ``LEASE_FILE`` (a Unix time written by
the runner at each heartbeat). When the lease is about to lapse without renewal (the runner was
killed, frozen or cut off), the thread kills the step's whole process group, so a step never
runs on after the scheduler may have given it to another runner. Standard library only: this
runs in every step process, before the user's imports.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

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


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: python -m services.step_runner.boot LEASE_FILE SCRIPT [ARGS...]")
    lease_file, script, *args = argv
    threading.Thread(target=_guard, args=(lease_file, 0.2), daemon=True).start()
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
