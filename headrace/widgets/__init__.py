"""``azureml.widgets``: following a run from a notebook or a terminal.

Lazy, like every headrace package: importing it loads nothing until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["RunDetails"]

_WHERE = {"RunDetails": "headrace.widgets.run_details"}

if TYPE_CHECKING:
    from headrace.widgets.run_details import RunDetails


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'headrace.widgets' has no attribute {name!r}")
