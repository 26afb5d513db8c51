"""``azureml.core.compute``: compute targets, which in headrace are pools of step runners.

Lazy, like ``headrace.core``: importing the package loads nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["AmlCompute", "ComputeTarget"]

_WHERE = {
    "AmlCompute": "headrace.core.compute.amlcompute",
    "ComputeTarget": "headrace.core.compute.compute",
}

if TYPE_CHECKING:
    from headrace.core.compute.amlcompute import AmlCompute
    from headrace.core.compute.compute import ComputeTarget


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'headrace.core.compute' has no attribute {name!r}")
