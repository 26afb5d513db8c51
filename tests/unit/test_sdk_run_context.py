"""``Run.get_context()`` in and out of a step: metric lines the uploader can always store."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from headrace.errors import HeadraceError
from headrace.run_context import Run
from services.artifact_uploader.handlers import read_metrics


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "HEADRACE_RUN_ID": "r1",
        "HEADRACE_STEP_NAME": "train",
        "HEADRACE_METRICS_FILE": str(tmp_path / "metrics.jsonl"),
    }


def _values(tmp_path: Path) -> list[object]:
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["value"] for line in lines]


def test_metric_lines_are_what_the_uploader_reads(tmp_path: Path) -> None:
    """Run.log, log_list and run.parent.log write lines read_metrics parses, in order."""
    run = Run.get_context(environ=_env(tmp_path))
    run.log("acc", 0.5)
    run.log_list("loss", [3, 2])
    assert run.parent is not None
    assert run.parent.id == "r1"
    run.parent.log("flag", True)
    parsed = read_metrics(tmp_path / "metrics.jsonl")
    assert [(n, v) for n, v, _ in parsed] == [
        ("acc", 0.5),
        ("loss", 3),
        ("loss", 2),
        ("flag", True),
    ]


def test_non_finite_and_foreign_numbers_are_normalised(tmp_path: Path) -> None:
    """NaN and infinities become strings (jsonb refuses them); other reals become floats."""
    run = Run.get_context(environ=_env(tmp_path))
    run.log("nan", float("nan"))
    run.log("inf", float("-inf"))
    run.log("frac", Fraction(1, 4))
    assert _values(tmp_path) == ["NaN", "-Infinity", 0.25]
    assert "NaN" not in (tmp_path / "metrics.jsonl").read_text().replace('"NaN"', "")


def test_bad_names_and_values_are_type_errors(tmp_path: Path) -> None:
    """A non-scalar value or an empty name fails in the step, naming the metric."""
    run = Run.get_context(environ=_env(tmp_path))
    with pytest.raises(TypeError, match=r"metric 'm'.*log_list"):
        run.log("m", {"a": 1})
    with pytest.raises(TypeError, match="non-empty str"):
        run.log("", 1)


def test_offline_run_prints_and_can_be_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """Outside a step metrics are printed; allow_offline=False makes that an error."""
    run = Run.get_context(environ={})
    assert run.offline
    assert run.parent is None
    run.log("acc", 0.5)
    assert "acc = 0.5" in capsys.readouterr().out
    with pytest.raises(HeadraceError, match="not running inside a headrace step"):
        Run.get_context(allow_offline=False, environ={})


def test_importing_run_loads_no_sdk_machinery() -> None:
    """``from headrace import Run`` / ``from headrace.core import Run`` (in every step) stay
    light: neither httpx, rich nor pydantic is imported."""
    import subprocess
    import sys

    code = (
        "import sys; from headrace import Run; from headrace.core import Run as R; "
        "assert Run is R; "
        "print(sorted(m for m in ('httpx', 'rich', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
