"""Where the embedded stack keeps its state under ``$HEADRACE_HOME``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Layout", "home_dir"]


def home_dir() -> Path:
    """``$HEADRACE_HOME`` or ``~/.headrace``."""
    env = os.environ.get("HEADRACE_HOME")
    return Path(env).absolute() if env else Path.home() / ".headrace"


@dataclass(frozen=True)
class Layout:
    """Paths of one embedded stack."""

    home: Path

    @property
    def pg_data(self) -> Path:
        return self.home / "pg"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def state_file(self) -> Path:
        """Pids, ports and logs of the running stack (present only while it runs)."""
        return self.home / "stack.json"

    @property
    def ports_file(self) -> Path:
        """Ports chosen at the first start, reused so clients keep working."""
        return self.home / "ports.json"

    @property
    def config_file(self) -> Path:
        """The workspace config ``Workspace.from_config()`` reads."""
        return self.home / "config.json"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def read_state(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return data

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        """Write atomically, so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
