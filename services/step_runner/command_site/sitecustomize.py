"""Loaded by the Python a ``CommandStep`` starts (``python train.py`` in its command): the same
set-up a script step gets from ``boot.py``, the step environment's packages first and
unmodified ``azureml.*`` imports resolved to headrace. Standard library only; ``boot.py``
is loaded by path, so nothing here is a copy of it."""

import importlib.util
import os
import sys

_BOOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "boot.py")
_spec = importlib.util.spec_from_file_location("_headrace_boot", _BOOT)
if _spec is not None and _spec.loader is not None:
    _boot = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_boot)
    _boot._add_environment(os.environ.get("HEADRACE_ENV_PATH", ""))
    sys.meta_path.append(_boot._AzuremlOnFirstImport)
