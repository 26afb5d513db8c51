"""Step runner settings."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field

from services.runtime.settings import RuntimeSettings

__all__ = ["StepRunnerSettings"]


def _default_runner_id() -> str:
    return f"runner-{socket.gethostname()}-{os.getpid()}"


class StepRunnerSettings(RuntimeSettings):
    """Which compute target this runner serves, and who it is."""

    compute_target: str = "local"
    runner_id: str = Field(default_factory=_default_runner_id)
    #: bytes of stderr quoted in a failed step's reason
    stderr_tail_bytes: int = 2000
    #: how long a claim stays valid without a heartbeat; the scheduler re-dispatches after it
    lease_seconds: float = Field(default=15.0, gt=0)
    #: start steps by forking a warm launcher (True) or a fresh interpreter each (False)
    forkserver: bool = True
    #: how often the lease is renewed (and cancellation noticed)
    heartbeat_seconds: float = Field(default=1.0, gt=0)
    #: where built environments are unpacked (default: ``home/envs``)
    env_cache_dir: Path | None = None
    #: disk budget of that cache; least recently used environments past it are evicted
    env_cache_bytes: int = Field(default=20 * 1024**3, ge=0)

    @property
    def env_cache(self) -> Path:
        return self.env_cache_dir or self.home / "envs"
