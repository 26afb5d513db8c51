"""``azureml.pipeline.steps``."""

from headrace.steps import PythonScriptStep

__all__ = ["PythonScriptStep"]
