"""FUSE mounts under a step's scratch: find them in the kernel's table and unmount them.

Shared by the data mounter (which makes the mounts and cleans up after a failure), the step
runner (which unmounts an attempt's inputs when the step ends) and the artifact uploader (a
last check before it deletes scratch).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
from pathlib import Path

import structlog

__all__ = ["fuse_mounts_under", "is_fuse_mount", "unmount", "unmount_under"]

_log = structlog.get_logger("headrace.mounts")


def _unescape(field: str) -> str:
    """/proc/self/mountinfo escapes space, tab, newline and backslash as octal."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount visible to this process."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        parts = left.split()
        if not sep or len(parts) < 5:
            continue
        out.append((_unescape(parts[4]), right.split()[0] if right else ""))
    return out


def fuse_mounts_under(root: Path) -> list[Path]:
    """FUSE mount points at or below ``root``, deepest first (the order to unmount them)."""
    base = os.path.realpath(root)
    found = [
        Path(point)
        for point, fstype in _mounts()
        if fstype.startswith("fuse") and (point == base or point.startswith(base + os.sep))
    ]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def is_fuse_mount(path: Path) -> bool:
    point = os.path.realpath(path)
    return any(p == point and t.startswith("fuse") for p, t in _mounts())


#: How long fusermount may take: it only asks the kernel, so longer means something is stuck.
_UNMOUNT_SECONDS = 15.0


async def _run(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` (no shell) for at most ``_UNMOUNT_SECONDS``; return its exit code and
    stderr."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(_UNMOUNT_SECONDS):
            _, err = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return -1, f"{argv[0]} timed out after {_UNMOUNT_SECONDS:.0f} s"
    return proc.returncode or 0, err.decode(errors="replace").strip()


async def unmount(point: Path) -> str | None:
    """Lazily unmount one FUSE mount point; ``None`` or the reason it failed.

    Lazy (``-z``): the mount leaves the namespace at once even if a straggling process of the
    step still has a file open; rclone exits when the kernel releases it.
    """
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    argv = [tool, "-uz", str(point)] if tool else ["umount", "-l", str(point)]
    code, err = await _run(argv)
    if code != 0 and is_fuse_mount(point):
        return err or f"exit code {code}"
    return None


async def unmount_under(root: Path) -> list[str]:
    """Unmount every FUSE mount below ``root``; return the failures (empty when all went).

    Why by scanning the kernel's mount table rather than a list kept by the mounter: the
    table is the truth even after a crash of any service between mounting and recording.
    """
    failures = []
    for point in fuse_mounts_under(root):
        reason = await unmount(point)
        if reason is None:
            _log.info("fuse.unmounted", mountpoint=str(point))
        else:
            failures.append(f"{point}: {reason}")
            _log.warning("fuse.unmount_failed", mountpoint=str(point), reason=reason)
    return failures
