"""The step boot shim: a step whose lease is not renewed kills its own process group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.step_runner.launcher import BOOT

SCRIPT = """
import subprocess, sys, time, pathlib
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
pathlib.Path(sys.argv[1]).write_text(str(child.pid))
print("args", sys.argv[2:], flush=True)
time.sleep(60)
"""


def _start(tmp_path: Path, lease_in: float) -> tuple[subprocess.Popen[bytes], Path, Path]:
    lease = tmp_path / "lease"
    lease.write_text(f"{time.time() + lease_in:.3f}")
    script = tmp_path / "step.py"
    script.write_text(SCRIPT)
    pidfile = tmp_path / "child"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(BOOT),
            str(lease),
            str(script),
            str(pidfile),
            "a b",
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    return proc, lease, pidfile


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_lapsed_lease_kills_step_and_children(tmp_path: Path) -> None:
    """Without renewal the step and its child die before the lease lapses."""
    proc, _, pidfile = _start(tmp_path, lease_in=2.5)
    assert proc.wait(timeout=10) == -9
    _wait_for(pidfile)
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{child}/stat").read_text().split()
        if stat[2] == "Z":
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{child}").exists() or (
        Path(f"/proc/{child}/stat").read_text().split()[2] == "Z"
    )


def test_renewed_lease_keeps_step_running_with_its_argv(tmp_path: Path) -> None:
    """While the lease keeps being renewed the script runs, seeing its own argv."""
    proc, lease, _ = _start(tmp_path, lease_in=2.0)
    try:
        for _ in range(20):
            lease.write_text(f"{time.time() + 2.0:.3f}")
            time.sleep(0.2)
        assert proc.poll() is None
        assert proc.stdout is not None
        assert proc.stdout.readline().decode().strip() == "args ['a b']"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def test_unmodified_v1_step_script_imports_azureml(tmp_path: Path) -> None:
    """A step script that still says ``from azureml.core import Run`` runs under the boot
    shim, with headrace's Run (only when no real azureml package is installed)."""
    lease = tmp_path / "lease"
    lease.write_text(f"{time.time() + 60:.3f}")
    script = tmp_path / "step.py"
    script.write_text(
        "from azureml.core import Run\n"
        "from azureml.core.run import Run as Again\n"
        "print(Run.__module__, Run is Again)\n"
    )
    done = subprocess.run(
        [sys.executable, str(BOOT), str(lease), str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["headrace.run_context", "True"]
