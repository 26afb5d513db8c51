"""``azureml.core`` names, for porting by changing the import prefix.

Lazy like ``headrace`` itself: step scripts ported from Azure ML do
``from headrace.core import Run``, which must not import the HTTP and model machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "VERSION",
    "ComputeTarget",
    "Dataset",
    "Datastore",
    "Environment",
    "Experiment",
    "Model",
    "Run",
    "RunConfiguration",
    "ScriptRunConfig",
    "Workspace",
]

_WHERE = {
    "ComputeTarget": "headrace.core.compute.compute",
    "Dataset": "headrace.dataset",
    "Datastore": "headrace.core.datastore",
    "Environment": "headrace.environment",
    "Experiment": "headrace.experiment",
    "Model": "headrace.core.model",
    "Run": "headrace.run_context",
    "RunConfiguration": "headrace.environment",
    "ScriptRunConfig": "headrace.core.script_run_config",
    "Workspace": "headrace.workspace",
}

if TYPE_CHECKING:
    from headrace.core.compute.compute import ComputeTarget
    from headrace.core.datastore import Datastore
    from headrace.core.model import Model
    from headrace.core.script_run_config import ScriptRunConfig
    from headrace.dataset import Dataset
    from headrace.environment import Environment, RunConfiguration
    from headrace.experiment import Experiment
    from headrace.run_context import Run
    from headrace.workspace import Workspace


def __getattr__(name: str) -> Any:
    if name == "VERSION":
        # headrace's version: what v1 code prints as "SDK version" is the installed SDK's.
        from importlib.metadata import version

        return version("headrace")
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'headrace.core' has no attribute {name!r}")
