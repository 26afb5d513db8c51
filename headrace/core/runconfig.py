"""``azureml.core.runconfig``."""

from headrace.distributed import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from headrace.environment import DEFAULT_CPU_IMAGE, DockerSection, RunConfiguration

__all__ = [
    "DEFAULT_CPU_IMAGE",
    "DockerSection",
    "MpiConfiguration",
    "PyTorchConfiguration",
    "RunConfiguration",
    "TensorflowConfiguration",
]
