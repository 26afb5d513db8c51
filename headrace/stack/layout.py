"""Where the embedded stack keeps its state under ``$HEADRACE_HOME``."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headrace.state_home import state_home

__all__ = ["Layout", "home_dir"]


def home_dir() -> Path:
    """The stack's state directory, by the rule of ``headrace.state_home``."""
    return state_home()


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

    @property
    def event_key_file(self) -> Path:
        """The key that signs internal events (mode 0600; only the services get it)."""
        return self.home / "secrets" / "event.key"

    def event_key(self) -> str:
        """This installation's event-signing key, generated on first use."""
        path = self.event_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # created concurrently: use that one
                return path.read_text().strip()
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return path.read_text().strip()

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def read_state(self) -> dict[str, Any] | None:
        data = self.read_json(self.state_file)
        return data or None

    @staticmethod
    def read_json(path: Path) -> dict[str, Any]:
        """The JSON object in ``path``; empty when missing or unreadable."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def write_json(self, path: Path, data: dict[str, Any]) -> None:
        """Write atomically, so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # Owner-only: the workspace config holds the local user's API token.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
