"""``azureml.pipeline.core``."""

from headrace.datarefs import PipelineData
from headrace.experiment import PipelineRun, StepRun
from headrace.pipeline_model import Pipeline, PipelineParameter
from headrace.published import PublishedPipeline

__all__ = [
    "Pipeline",
    "PipelineData",
    "PipelineParameter",
    "PipelineRun",
    "PublishedPipeline",
    "StepRun",
]
