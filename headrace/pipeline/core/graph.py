"""``azureml.pipeline.core.graph``."""

from headrace.pipeline_model import PipelineParameter

__all__ = ["PipelineParameter"]
