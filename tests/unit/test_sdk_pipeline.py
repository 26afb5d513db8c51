"""The object model turns into the submitted spec as in Azure ML; errors reach the user."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.spec import DatastoreInput, InputArg, LiteralArg, OutputArg, ParameterArg
from headrace import DataReference, Pipeline, PipelineData, PipelineParameter, PythonScriptStep
from headrace.client import ApiClient
from headrace.errors import PipelineValidationError
from headrace.run_context import Run
from headrace.workspace import Workspace


class FakeDatastore:
    name = "workspaceblobstore"


def fake_workspace(handler: Any = None) -> Workspace:
    transport = httpx.MockTransport(handler or (lambda r: httpx.Response(404, json={})))
    return Workspace("local", "http://api", client=ApiClient("http://api", transport=transport))


def test_steps_arguments_and_nested_lists_become_the_spec(tmp_path: Path) -> None:
    """Arguments map to literal/input/output/parameter; nested step lists flatten."""
    ds: Any = FakeDatastore()
    raw = DataReference(datastore=ds, data_reference_name="raw", path_on_datastore="d/x.csv")
    model = PipelineData("model", datastore=ds)
    param = PipelineParameter(name="epochs", default_value=10)
    train = PythonScriptStep(
        script_name="train.py",
        arguments=["--in", raw, "--out", model, "--epochs", param, 3],
        outputs=[model],
        source_directory=tmp_path,
    )
    score = PythonScriptStep(
        name="score",
        script_name="score.py",
        arguments=[model.as_download()],
        target="local",
        source_directory=tmp_path,
    )
    pipeline = Pipeline(workspace=fake_workspace(), steps=[[train, score]])
    spec = pipeline.to_spec({str(tmp_path.resolve()): "sha256:" + "1" * 64})
    t, s = spec.steps
    assert t.name == "train.py"
    assert t.arguments == [
        LiteralArg(value="--in"),
        InputArg(name="raw"),
        LiteralArg(value="--out"),
        OutputArg(name="model"),
        LiteralArg(value="--epochs"),
        ParameterArg(name="epochs"),
        LiteralArg(value="3"),
    ]
    assert t.inputs == [
        DatastoreInput(name="raw", datastore="workspaceblobstore", path_on_datastore="d/x.csv")
    ]
    assert [i.name for i in s.inputs] == ["model"]
    assert s.inputs[0].mode == "download"
    assert [p.name for p in spec.parameters] == ["epochs"]
    assert pipeline.validate() == []


def test_validation_problems_surface_as_one_clear_error() -> None:
    """A 422 from the API becomes PipelineValidationError listing every problem."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": {"problems": ["step 'a': bad", "cycle"]}})

    ws = fake_workspace(handler)
    with pytest.raises(PipelineValidationError) as info:
        ws.client.post("/runs", {})
    assert info.value.problems == ["step 'a': bad", "cycle"]
    assert "step 'a': bad" in str(info.value)


def test_run_context_writes_metrics_inside_a_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run.get_context().log appends JSON lines to the runner's metrics file."""
    metrics = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("HEADRACE_RUN_ID", "r1")
    monkeypatch.setenv("HEADRACE_STEP_NAME", "s")
    monkeypatch.setenv("HEADRACE_METRICS_FILE", str(metrics))
    run = Run.get_context()
    run.log("acc", 0.5)
    run.log("label", "best")
    assert [json.loads(line)["value"] for line in metrics.read_text().splitlines()] == [0.5, "best"]
    with pytest.raises(TypeError, match="acc"):
        run.log("acc", [1, 2])


def test_workspace_config_prefers_headrace_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HEADRACE_HOME's config wins over a .headrace directory found from the cwd."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"api_url": "http://home:1"}))
    cwd = tmp_path / "project"
    (cwd / ".headrace").mkdir(parents=True)
    (cwd / ".headrace" / "config.json").write_text(json.dumps({"api_url": "http://cwd:2"}))
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("HEADRACE_CONFIG", raising=False)
    monkeypatch.setenv("HEADRACE_HOME", str(home))
    assert Workspace.from_config().api_url == "http://home:1"
    monkeypatch.delenv("HEADRACE_HOME")
    assert Workspace.from_config().api_url == "http://cwd:2"
    assert os.getcwd() == str(cwd)


def test_stack_and_sdk_agree_on_the_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``make run`` left ``.headrace`` in a checkout, ``headrace up`` started there uses
    that directory and a script there reads that stack's config: one rule for both."""
    from headrace.errors import ConfigError
    from headrace.stack.layout import home_dir
    from headrace.workspace import find_config

    checkout = tmp_path / "checkout"
    (checkout / ".headrace").mkdir(parents=True)
    (checkout / "src").mkdir()
    monkeypatch.chdir(checkout / "src")
    monkeypatch.delenv("HEADRACE_CONFIG", raising=False)
    monkeypatch.delenv("HEADRACE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert home_dir() == checkout / ".headrace"
    (home_dir() / "config.json").write_text(json.dumps({"api_url": "http://checkout:3"}))
    assert find_config() == checkout / ".headrace" / "config.json"
    monkeypatch.setenv("HEADRACE_HOME", str(tmp_path / "elsewhere"))
    assert home_dir() == tmp_path / "elsewhere"
    with pytest.raises(ConfigError, match="elsewhere"):
        find_config()
