"""``CommandStep``, ``ScriptRunConfig`` and the distributed configurations become the
submitted spec as v1 code writes them, and what headrace cannot run is refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contracts.spec import InputArg, LiteralArg, OutputArg, ParameterArg
from headrace.core import ScriptRunConfig
from headrace.core.runconfig import MpiConfiguration, PyTorchConfiguration, TensorflowConfiguration
from headrace.datarefs import PipelineData
from headrace.environment import Environment
from headrace.errors import NotSupportedError
from headrace.pipeline.core import Pipeline, PipelineParameter
from headrace.pipeline.steps import CommandStep
from tests.unit.test_sdk_pipeline import FakeDatastore, fake_workspace

DIGEST = "sha256:" + "1" * 64


def spec_of(tmp_path: Path, *steps: Any) -> Any:
    pipeline = Pipeline(workspace=fake_workspace(), steps=list(steps))
    return pipeline.to_spec({str(tmp_path.resolve()): DIGEST})


def test_the_notebooks_script_run_config_refuses_two_nodes(tmp_path: Path) -> None:
    """MpiConfiguration(node_count=2) names the multi-node feature and what to use instead."""
    with pytest.raises(NotSupportedError, match=r"node_count=2.*process_count_per_node"):
        MpiConfiguration(node_count=2)
    with pytest.raises(NotSupportedError, match="node_count=3"):
        PyTorchConfiguration(node_count=3)
    with pytest.raises(NotSupportedError, match="TensorflowConfiguration"):
        TensorflowConfiguration(worker_count=2)


def test_a_script_run_config_with_a_command_becomes_a_command_step(tmp_path: Path) -> None:
    """The notebook's shape on one node: the command list, source directory, compute target,
    environment and process count all come from the ScriptRunConfig."""
    src = ScriptRunConfig(
        source_directory=tmp_path,
        command=["python train.py --epochs 30"],
        compute_target="gpu-cluster",
        environment=Environment("tf"),
        distributed_job_config=MpiConfiguration(process_count_per_node=4),
    )
    step = CommandStep(name="train-mnist", runconfig=src)
    (spec_step,) = spec_of(tmp_path, step).steps
    assert spec_step.step_kind == "command"
    assert spec_step.command == [LiteralArg(value="python train.py --epochs 30")]
    assert (spec_step.name, spec_step.compute_target) == ("train-mnist", "gpu-cluster")
    assert (spec_step.snapshot, spec_step.process_count) == (DIGEST, 4)
    assert spec_step.arguments == []
    assert spec_step.script_name == ""


def test_data_and_parameters_in_a_command_are_wired_as_for_scripts(tmp_path: Path) -> None:
    """PipelineData in a command is the output of the step listing it and an input of the
    step that only names it;
    a PipelineParameter becomes a parameter item; a script ScriptRunConfig runs python."""
    ds: Any = FakeDatastore()
    data = PipelineData("prepared", datastore=ds)
    lr = PipelineParameter(name="lr", default_value=0.1)
    prep = CommandStep(
        name="prep",
        command=["python", "prep.py", "--out", data],
        outputs=[data],
        source_directory=tmp_path,
    )
    train = CommandStep(
        name="train",
        runconfig=ScriptRunConfig(
            source_directory=tmp_path, script="train.py", arguments=["--data", data, "--lr", lr]
        ),
    )
    spec = spec_of(tmp_path, prep, train)
    steps = {s.name: s for s in spec.steps}
    assert steps["prep"].command[-1] == OutputArg(name="prepared")
    assert [o.name for o in steps["prep"].outputs] == ["prepared"]
    assert steps["train"].command == [
        LiteralArg(value="python"),
        LiteralArg(value="train.py"),
        LiteralArg(value="--data"),
        InputArg(name="prepared"),
        LiteralArg(value="--lr"),
        ParameterArg(name="lr"),
    ]
    assert [p.name for p in spec.parameters] == ["lr"]


def test_what_a_command_step_cannot_do_is_refused(tmp_path: Path) -> None:
    """Both command and script, resume_from, an empty command, runconfig_pipeline_params and
    a RunConfiguration in place of a ScriptRunConfig are each refused with what to do."""
    with pytest.raises(ValueError, match="either command"):
        ScriptRunConfig(source_directory=tmp_path, script="a.py", command=["ls"])
    with pytest.raises(NotSupportedError, match="resume_from"):
        ScriptRunConfig(source_directory=tmp_path, script="a.py", resume_from="run-1")
    with pytest.raises(ValueError, match="empty"):
        CommandStep(command=[" "], source_directory=tmp_path)
    with pytest.raises(ValueError, match="nothing to run"):
        CommandStep(runconfig=ScriptRunConfig(source_directory=tmp_path))
    with pytest.raises(NotSupportedError, match="runconfig_pipeline_params"):
        CommandStep(command="ls", runconfig_pipeline_params={"a": 1})
    with pytest.raises(TypeError, match="ScriptRunConfig"):
        CommandStep(command="ls", runconfig="not a config")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="from 1 to 64"):
        MpiConfiguration(process_count_per_node=0)
