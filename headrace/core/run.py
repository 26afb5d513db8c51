"""``azureml.core.run``: the run a step script reports to (``Run.get_context()``)."""

from headrace.run_context import Run

__all__ = ["Run"]
