"""``azureml.core`` names, for porting by changing the import prefix."""

from headrace.compute import ComputeTarget
from headrace.datastore import Datastore
from headrace.experiment import Experiment
from headrace.run_context import Run
from headrace.workspace import Workspace

__all__ = ["ComputeTarget", "Datastore", "Experiment", "Run", "Workspace"]
