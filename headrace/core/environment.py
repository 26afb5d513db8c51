"""``azureml.core.environment``."""

from headrace.environment import (
    DEFAULT_CPU_IMAGE,
    CondaDependencies,
    DockerSection,
    Environment,
    PythonSection,
    RunConfiguration,
)

__all__ = [
    "DEFAULT_CPU_IMAGE",
    "CondaDependencies",
    "DockerSection",
    "Environment",
    "PythonSection",
    "RunConfiguration",
]
