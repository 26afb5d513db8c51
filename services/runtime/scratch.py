"""The scratch layout shared by the data mounter, the runners and the uploader.

``<scratch>/<run_id>/<step>/<attempt>/`` holds ``inputs/``, ``outputs/``, ``wd/`` (the step's
working directory), ``stdout.txt``, ``stderr.txt`` and ``metrics.jsonl``. Run ids and step
names are validated by the contracts, so these paths cannot escape the scratch root.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["AttemptDir"]


@dataclass(frozen=True)
class AttemptDir:
    """Paths of one step attempt in scratch."""

    root: Path

    @classmethod
    def of(cls, scratch: Path, run_id: str, step: str, attempt: int) -> AttemptDir:
        for part in (run_id, step):
            if not part or "/" in part or part in (".", ".."):
                raise ValueError(f"unsafe path component {part!r}")
        return cls(scratch / run_id / step / str(attempt))

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def workdir(self) -> Path:
        return self.root / "wd"

    @property
    def stdout(self) -> Path:
        return self.root / "stdout.txt"

    @property
    def stderr(self) -> Path:
        return self.root / "stderr.txt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def lease(self) -> Path:
        """Until when the runner's lease holds (a Unix time), renewed at each heartbeat."""
        return self.root / "lease"

    @property
    def mount_log(self) -> Path:
        """Notes from the data mounter (for example a fallback from mount to copy)."""
        return self.root / "mount.log"
