"""The public surface is pinned: every exported name of ``headrace`` and of every azureml-style
module under it resolves, so a broken lazy-import table fails here rather than in user code."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import headrace

# the azureml module tree headrace reproduces (azureml.core -> headrace.core, ...)
_TREES = ["headrace.core", "headrace.data", "headrace.pipeline"]


def _modules() -> list[str]:
    names = ["headrace"]
    for tree in _TREES:
        package = importlib.import_module(tree)
        names.append(tree)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{tree}."):
            names.append(info.name)
    return sorted(set(names))


@pytest.mark.parametrize("module", _modules())
def test_every_exported_name_resolves(module: str) -> None:
    """Each name in the module's ``__all__`` can be imported from it."""
    mod = importlib.import_module(module)
    exported = getattr(mod, "__all__", [])
    missing = [name for name in exported if not hasattr(mod, name)]
    assert missing == [], f"{module} exports names it does not have: {missing}"


def test_top_level_surface_is_pinned() -> None:
    """``headrace`` exports the v1 object model's main names (and its version), lazily."""
    assert {
        "Workspace",
        "Datastore",
        "DataReference",
        "PipelineData",
        "PythonScriptStep",
        "Pipeline",
        "Experiment",
        "Run",
        "__version__",
    } <= set(headrace.__all__)
    assert isinstance(headrace.__version__, str)


def test_unknown_names_raise_attribute_error() -> None:
    """A name headrace lacks is an ``AttributeError`` naming it, as for any module."""
    with pytest.raises(AttributeError, match="NoSuchThing"):
        _ = headrace.NoSuchThing
