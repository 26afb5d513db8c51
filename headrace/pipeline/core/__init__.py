"""``azureml.pipeline.core``."""

from headrace.datarefs import PipelineData
from headrace.experiment import PipelineRun, StepRun
from headrace.pipeline.core.pipeline_draft import PipelineDraft
from headrace.pipeline.core.schedule import Schedule, ScheduleRecurrence, TimeZone
from headrace.pipeline_endpoint import PipelineEndpoint
from headrace.pipeline_model import Pipeline, PipelineParameter
from headrace.published import PublishedPipeline

__all__ = [
    "Pipeline",
    "PipelineData",
    "PipelineDraft",
    "PipelineEndpoint",
    "PipelineParameter",
    "PipelineRun",
    "PublishedPipeline",
    "Schedule",
    "ScheduleRecurrence",
    "StepRun",
    "TimeZone",
]
