"""``azureml.pipeline.steps``."""

from headrace.command_step import CommandStep
from headrace.steps import DataTransferStep, PythonScriptStep

__all__ = ["CommandStep", "DataTransferStep", "PythonScriptStep"]
