"""``azureml.pipeline.steps``."""

from headrace.steps import DataTransferStep, PythonScriptStep

__all__ = ["DataTransferStep", "PythonScriptStep"]
