"""``azureml.core.environment``."""

from headrace.environment import CondaDependencies, Environment, RunConfiguration

__all__ = ["CondaDependencies", "Environment", "RunConfiguration"]
