"""``azureml.data.dataset_consumption_config``: how a step consumes a dataset input."""

from headrace.dataset import DatasetConsumptionConfig

__all__ = ["DatasetConsumptionConfig"]
