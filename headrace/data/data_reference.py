"""``azureml.data.data_reference``."""

from headrace.datarefs import DataReference

__all__ = ["DataReference"]
