"""Git information about a source directory, recorded with the runs that use it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["git_info"]


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info(root: Path) -> dict[str, object] | None:
    """Commit, branch, dirty flag and remote of the work tree holding ``root``, or None when
    it is not in a git work tree (or git is not installed)."""
    if shutil.which("git") is None or _git(root, "rev-parse", "--is-inside-work-tree") != "true":
        return None
    status = _git(root, "status", "--porcelain", "--", ".")
    return {
        "commit": _git(root, "rev-parse", "HEAD"),
        "branch": _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status),
        "remote": _git(root, "config", "--get", "remote.origin.url"),
    }
