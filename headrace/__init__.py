"""headrace: run Azure ML SDK v1 style pipelines on your own machines.

Public names load lazily, so that ``from headrace import Run`` inside a step process stays
fast (it needs none of the SDK's HTTP or model machinery).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ComputeTarget",
    "DataReference",
    "Dataset",
    "Datastore",
    "Environment",
    "Experiment",
    "HeadraceError",
    "Pipeline",
    "PipelineData",
    "PipelineEndpoint",
    "PipelineParameter",
    "PipelineRun",
    "PublishedPipeline",
    "PythonScriptStep",
    "Run",
    "StepRun",
    "Workspace",
    "__version__",
]

_WHERE = {
    "ComputeTarget": "headrace.core.compute.compute",
    "DataReference": "headrace.datarefs",
    "Dataset": "headrace.dataset",
    "Datastore": "headrace.core.datastore",
    "Environment": "headrace.environment",
    "Experiment": "headrace.experiment",
    "HeadraceError": "headrace.errors",
    "Pipeline": "headrace.pipeline_model",
    "PipelineData": "headrace.datarefs",
    "PipelineEndpoint": "headrace.pipeline_endpoint",
    "PipelineParameter": "headrace.pipeline_model",
    "PipelineRun": "headrace.experiment",
    "PublishedPipeline": "headrace.published",
    "PythonScriptStep": "headrace.steps",
    "Run": "headrace.run_context",
    "StepRun": "headrace.experiment",
    "Workspace": "headrace.workspace",
}

if TYPE_CHECKING:
    from headrace.core.compute.compute import ComputeTarget
    from headrace.core.datastore import Datastore
    from headrace.datarefs import DataReference, PipelineData
    from headrace.dataset import Dataset
    from headrace.environment import Environment
    from headrace.errors import HeadraceError
    from headrace.experiment import Experiment, PipelineRun, StepRun
    from headrace.pipeline_endpoint import PipelineEndpoint
    from headrace.pipeline_model import Pipeline, PipelineParameter
    from headrace.published import PublishedPipeline
    from headrace.run_context import Run
    from headrace.steps import PythonScriptStep
    from headrace.workspace import Workspace


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # read from the installed distribution only when asked: importing headrace stays cheap
        from importlib.metadata import version

        return version("headrace")
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'headrace' has no attribute {name!r}")
