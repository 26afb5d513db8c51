"""npm packages the tests need, installed on first use into a project-local cache.

Only Node.js and npm are assumed (the Makefile installs them with apt-get when missing); the
packages live under ``.cache/`` so a fresh clone installs them once. A file lock keeps the
pytest-xdist workers from installing the same package twice at once.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

__all__ = ["CACHE", "npm_package"]

CACHE = Path(__file__).resolve().parent.parent / ".cache"


def npm_package(prefix: str, spec: str, marker: str) -> Path:
    """``node_modules`` of ``CACHE/prefix`` holding ``spec``; ``marker`` is a path inside it
    that exists once the package is installed."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: run `make test` (it installs Node.js and npm)")
    root = CACHE / prefix
    root.mkdir(parents=True, exist_ok=True)
    modules = root / "node_modules"
    with (root / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (modules / marker).exists():
            subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", spec],
                cwd=root,
                check=True,
                capture_output=True,
                timeout=600,
            )
    return modules
