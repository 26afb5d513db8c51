"""``azureml.core.compute_target``: where v1 code imports ``ComputeTargetException`` from.

Azure ML defines the exception in ``azureml.exceptions`` and imports it here; so does headrace,
so that ``except ComputeTargetException`` catches the same type whichever path it came by.
"""

from __future__ import annotations

from headrace.exceptions import ComputeTargetException

__all__ = ["ComputeTargetException"]
