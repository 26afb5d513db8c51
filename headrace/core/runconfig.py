"""``azureml.core.runconfig``."""

from headrace.environment import RunConfiguration

__all__ = ["RunConfiguration"]
