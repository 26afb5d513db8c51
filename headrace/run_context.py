"""``Run.get_context()`` inside a step: log metrics (and know which run this is).

Standard library only: every step imports it, so it must be quick to import. Metrics go to a
JSON-lines file in the step's scratch area, which the artifact uploader records after the step.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

__all__ = ["Run"]


class Run:
    """The run a step belongs to (or an offline run outside headrace)."""

    def __init__(self, run_id: str | None, step: str | None, metrics_file: str | None) -> None:
        self.id = run_id or "offline"
        self.step_name = step
        self._metrics_file = metrics_file

    @classmethod
    def get_context(cls) -> Run:
        env = os.environ
        return cls(
            env.get("HEADRACE_RUN_ID"),
            env.get("HEADRACE_STEP_NAME"),
            env.get("HEADRACE_METRICS_FILE"),
        )

    @property
    def offline(self) -> bool:
        return self._metrics_file is None

    def log(self, name: str, value: Any, description: str = "") -> None:
        """Record a metric (a number, string or bool)."""
        if not isinstance(value, int | float | str | bool):
            raise TypeError(
                f"metric {name!r}: value must be int, float, str or bool, "
                f"got {type(value).__name__}"
            )
        if self._metrics_file is None:
            print(f"[offline run] {name} = {value!r}")
            return
        line = json.dumps(
            {
                "name": name,
                "value": value,
                "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            }
        )
        with open(self._metrics_file, "a") as f:
            f.write(line + "\n")

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, step={self.step_name!r})"
