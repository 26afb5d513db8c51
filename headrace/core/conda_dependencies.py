"""``azureml.core.conda_dependencies`` (pip packages only)."""

from headrace.environment import CondaDependencies

__all__ = ["CondaDependencies"]
