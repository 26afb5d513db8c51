"""``Run.get_context()`` inside a step: log metrics (and know which run this is).

Standard library only: every step imports it, so it must be quick to import. Metrics go to a
JSON-lines file in the step's scratch area, which the artifact uploader records after the step.

Values are normalised here, in the step, because a bad line fails the upload of the whole
step's artifacts later: numpy and other real numbers become ``int``/``float`` (as Azure ML
accepts them), and NaN and infinities become the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"`` (JSON has no such numbers and PostgreSQL's ``jsonb`` refuses them).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["MetricValue", "Run"]

MetricValue = int | float | str | bool


def _metric_value(name: str, value: object) -> MetricValue:
    """A JSON-safe scalar, or a ``TypeError`` naming the metric."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return number
    raise TypeError(
        f"metric {name!r}: value must be int, float, str or bool, got "
        f"{type(value).__name__}; log a sequence element by element with Run.log_list"
    )


class Run:
    """The run a step belongs to (or an offline run outside headrace)."""

    def __init__(
        self,
        run_id: str | None,
        step: str | None,
        metrics_file: str | None,
        *,
        parent: Run | None = None,
        datasets: str | None = None,
    ) -> None:
        self.id = run_id or "offline"
        self._datasets = datasets
        self.step_name = step
        self._metrics_file = metrics_file
        #: the pipeline run (Azure's ``run.parent``); what it logs is recorded on this step,
        #: since pipeline-level metrics are not stored apart
        self.parent = parent

    @classmethod
    def get_context(
        cls, allow_offline: bool = True, *, environ: Mapping[str, str] | None = None
    ) -> Run:
        """The step run this process executes; outside a step an offline run that prints.

        ``allow_offline=False`` makes running outside a step an error instead.
        """
        env = os.environ if environ is None else environ
        run_id, metrics = env.get("HEADRACE_RUN_ID"), env.get("HEADRACE_METRICS_FILE")
        if run_id is None and not allow_offline:
            from headrace.errors import HeadraceError

            raise HeadraceError(
                "not running inside a headrace step (HEADRACE_RUN_ID is not set); submit the "
                "script as a PythonScriptStep, or call Run.get_context(allow_offline=True)"
            )
        parent = cls(run_id, None, metrics) if run_id is not None else None
        return cls(
            run_id,
            env.get("HEADRACE_STEP_NAME"),
            metrics,
            parent=parent,
            datasets=env.get("HEADRACE_INPUT_DATASETS"),
        )

    @property
    def input_datasets(self) -> dict[str, Any]:
        """The step's dataset inputs by name (``dataset.as_named_input(name)``).

        As in Azure ML: a file dataset consumed ``as_mount()`` or ``as_download()`` is the
        local path where its files are (a ``str``); otherwise the dataset object
        (``to_pandas_dataframe()``, ``to_path()``, ``download()``, ``mount()``).
        """
        from headrace.step_datasets import StepFileDataset, step_dataset

        if not self._datasets:
            return {}
        out: dict[str, Any] = {}
        for name, info in json.loads(self._datasets).items():
            dataset = step_dataset(name, info)
            consumed_as_path = info.get("mode") in ("mount", "download")
            if isinstance(dataset, StepFileDataset) and consumed_as_path:
                out[name] = dataset.mount_point
            else:
                out[name] = dataset
        return out

    @property
    def offline(self) -> bool:
        return self._metrics_file is None

    def log(self, name: str, value: object, description: str = "") -> None:
        """Record a metric (a number, string or bool); a name logged again becomes a list."""
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"a metric name must be a non-empty str, got {name!r}")
        scalar = _metric_value(name, value)
        if self._metrics_file is None:
            print(f"[offline run] {name} = {scalar!r}")
            return
        line = json.dumps(
            {"name": name, "value": scalar, "time": datetime.now(UTC).isoformat()},
            allow_nan=False,
        )
        # One append of one line per call: a crash leaves every earlier metric intact.
        with open(self._metrics_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def log_list(self, name: str, value: Iterable[object], description: str = "") -> None:
        """Record each element of ``value`` under ``name`` (read back as a list)."""
        for item in value:
            self.log(name, item, description)

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, step={self.step_name!r})"
