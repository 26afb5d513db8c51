"""``azureml.core.runconfig``."""

from headrace.environment import DEFAULT_CPU_IMAGE, DockerSection, RunConfiguration

__all__ = ["DEFAULT_CPU_IMAGE", "DockerSection", "RunConfiguration"]
