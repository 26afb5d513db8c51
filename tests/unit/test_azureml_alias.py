"""The opt-in v1 mode: unmodified ``azureml.*`` imports resolve to headrace, in one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from headrace.azureml_alias import notebook_source

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_v1_script_imports_resolve_to_headrace(tmp_path: Path) -> None:
    """A script written for Azure ML imports ``azureml.core`` and ``azureml.pipeline.steps``
    unchanged under ``headrace run-v1``, gets headrace's classes, and sees its arguments."""
    script = tmp_path / "v1.py"
    script.write_text(
        "import sys\n"
        "import azureml.core\n"
        "from azureml.core import Workspace, Experiment\n"
        "from azureml.pipeline.core import Pipeline, PipelineData\n"
        "from azureml.pipeline.steps import PythonScriptStep\n"
        "import headrace.core\n"
        "assert azureml.core is headrace.core\n"
        "print(Workspace.__module__, PythonScriptStep.__module__, sys.argv[1:])\n"
    )
    done = _cli("run-v1", str(script), "--alpha", "0.5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "headrace.workspace",
        "headrace.steps",
        "['--alpha',",
        "'0.5']",
    ]


def test_missing_v1_module_says_what_headrace_lacks(tmp_path: Path) -> None:
    """A v1 module headrace does not provide fails with an ImportError naming it and where to
    look, and code guarding the import with ``except ImportError`` still works."""
    script = tmp_path / "v1.py"
    script.write_text(
        "try:\n"
        "    import azureml.train.automl\n"
        "except ImportError as exc:\n"
        "    print('guarded:', exc)\n"
        "import azureml.train.automl\n"
    )
    done = _cli("run-v1", str(script), cwd=tmp_path)
    assert done.returncode == 1
    assert "guarded: headrace does not provide Azure ML's module 'azureml.train" in done.stdout
    assert "V1ModuleNotProvided" in done.stderr
    assert "docs/compat.md" in done.stderr


def test_alias_is_only_in_the_process_that_asked(tmp_path: Path) -> None:
    """Without run-v1 there is no ``azureml`` module: nothing is installed under that name."""
    done = subprocess.run(
        [sys.executable, "-c", "import azureml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "No module named 'azureml'" in done.stderr


def test_notebook_cells_run_in_order_and_magics_are_reported(tmp_path: Path) -> None:
    """A notebook runs its code cells in one namespace, in order; IPython-only lines are left
    out and named on stderr; markdown cells are ignored."""
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Title\n"]},
            {
                "cell_type": "code",
                "source": ["%matplotlib inline\n", "from azureml.core import Run\n"],
            },
            {"cell_type": "code", "source": "x = 2\n!pip install azureml-sdk\n"},
            {"cell_type": "code", "source": ["print(Run.__module__, x * 21)\n"]},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    done = _cli("run-v1", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["headrace.run_context", "42"]
    assert "skipped IPython-only line: %matplotlib inline" in done.stderr
    assert "skipped IPython-only line: !pip install azureml-sdk" in done.stderr


def test_a_file_that_is_not_a_notebook_is_refused(tmp_path: Path) -> None:
    """A broken .ipynb gets an error naming the file, not a JSON traceback."""
    from headrace.errors import HeadraceError

    path = tmp_path / "broken.ipynb"
    path.write_text("{not json")
    with pytest.raises(HeadraceError, match="is not a Jupyter notebook"):
        notebook_source(path)


def test_writefile_cells_write_their_script_and_errors_name_the_cell(tmp_path: Path) -> None:
    """A ``%%writefile`` cell writes its body to the file (how notebooks make their step
    scripts) instead of running it; a failing cell's traceback names the cell."""
    nb = {
        "cells": [
            {"cell_type": "code", "source": ["%%writefile train.py\n", "print('in step')\n"]},
            {"cell_type": "code", "source": ["print(open('train.py').read().strip())\n"]},
            {"cell_type": "code", "source": ["x = 1\n", "raise RuntimeError('boom')\n"]},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    done = _cli("run-v1", str(path), cwd=tmp_path)
    assert (tmp_path / "train.py").read_text() == "print('in step')\n"
    assert done.stdout.split() == ["print('in", "step')"]
    assert done.returncode == 1
    assert "nb.ipynb [cell 3]" in done.stderr
    assert "RuntimeError: boom" in done.stderr
