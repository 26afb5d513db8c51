"""The v1 names notebooks reach first, and the pipeline semantics decided in the SDK: module
paths, transitive closure, ``run_after``, argument-only ``PipelineData``, refused options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts.spec import OutputArg, PipelineDataInput, StepOutput, step_dependencies
from headrace import Pipeline, PipelineData, PipelineParameter, PythonScriptStep
from headrace.errors import NotSupportedError
from headrace.stack.supervisor import runners_wanted
from headrace.workspace import Workspace
from tests.unit.test_sdk_pipeline import FakeDatastore, fake_workspace

SNAP = "sha256:" + "1" * 64


def _spec(pipeline: Pipeline, src: Path) -> Any:
    return pipeline.to_spec({str(src.resolve()): SNAP})


def _step(src: Path, name: str, **kw: Any) -> PythonScriptStep:
    return PythonScriptStep(name=name, script_name=f"{name}.py", source_directory=src, **kw)


def test_v1_module_paths_resolve_to_one_implementation_each() -> None:
    """Every v1 path the notebooks import from exists, and names reached by two paths are
    the same object (so ``except ComputeTargetException`` catches it whichever was used)."""
    import headrace.core
    from headrace.core import ComputeTarget as CoreComputeTarget
    from headrace.core import Datastore as CoreDatastore
    from headrace.core.compute import AmlCompute, ComputeTarget
    from headrace.core.compute_target import ComputeTargetException as FromComputeTarget
    from headrace.core.datastore import Datastore
    from headrace.data.datapath import DataPath, DataPathComputeBinding
    from headrace.exceptions import ComputeTargetException, UserErrorException
    from headrace.widgets import RunDetails

    assert CoreComputeTarget is ComputeTarget
    assert CoreDatastore is Datastore
    assert issubclass(AmlCompute, ComputeTarget)
    assert FromComputeTarget is ComputeTargetException
    assert issubclass(ComputeTargetException, UserErrorException)
    from importlib.metadata import version

    assert version("headrace") == headrace.core.VERSION
    assert DataPath.__module__ == "headrace.data.datapath"
    assert DataPathComputeBinding.__module__ == "headrace.data.datapath"
    assert RunDetails.__module__ == "headrace.widgets.run_details"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = headrace.core.compute.Nope


def test_new_packages_import_lazily() -> None:
    """Importing the new v1 packages loads neither the HTTP client nor rich: a step script's
    imports stay cheap."""
    code = (
        "import sys, headrace.core.compute, headrace.widgets, headrace.exceptions, "
        "headrace.core.compute_target\n"
        "print(sorted(m for m in ('httpx', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_workspace_reports_azure_identity_fields(tmp_path: Path) -> None:
    """An Azure-style config gives name, subscription, resource group and location; a
    headrace config gives 'local' for the Azure-only ones."""
    azure = tmp_path / "azure.json"
    azure.write_text(
        json.dumps(
            {
                "api_url": "http://x",
                "workspace_name": "ws1",
                "subscription_id": "sub",
                "resource_group": "rg",
                "location": "westeurope",
            }
        )
    )
    ws = Workspace.from_config(azure)
    assert (ws.name, ws.subscription_id, ws.resource_group, ws.location) == (
        "ws1",
        "sub",
        "rg",
        "westeurope",
    )
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"api_url": "http://x", "workspace": "local"}))
    ws = Workspace.from_config(plain)
    assert (ws.name, ws.subscription_id, ws.resource_group, ws.location) == ("local",) * 4


def test_pipeline_of_the_last_step_pulls_in_every_producer(tmp_path: Path) -> None:
    """``Pipeline(steps=[c])`` adds the producers of c's inputs, transitively, upstream
    first; ``resolve_closure=False`` keeps only what was given."""
    ds: Any = FakeDatastore()
    one, two = PipelineData("one", datastore=ds), PipelineData("two", datastore=ds)
    a = _step(tmp_path, "a", outputs=[one], arguments=[one])
    _step(tmp_path, "b", inputs=[one], outputs=[two], arguments=[one, two])
    c = _step(tmp_path, "c", inputs=[two.as_download()], arguments=[two])
    ws = fake_workspace()
    assert [s.name for s in Pipeline(ws, [c]).steps] == ["a", "b", "c"]
    assert [s.name for s in Pipeline(ws, [c, a]).steps] == ["b", "c", "a"]
    only_c = Pipeline(ws, [c], resolve_closure=False)
    assert [s.name for s in only_c.steps] == ["c"]
    assert any("'two' is not produced by any step" in p for p in only_c.validate())


def test_run_after_orders_steps_without_data(tmp_path: Path) -> None:
    """``run_after`` becomes a dependency of the spec, pulls the earlier step into the
    pipeline, and a loop of run_after is reported as a cycle."""
    s1, s2, s3 = (_step(tmp_path, n) for n in ("s1", "s2", "s3"))
    s2.run_after(s1)
    s3.run_after(s2)
    s3.run_after(s2)  # twice: recorded once
    pipeline = Pipeline(fake_workspace(), [s3])
    spec = _spec(pipeline, tmp_path)
    assert [s.name for s in spec.steps] == ["s1", "s2", "s3"]
    assert [s.run_after for s in spec.steps] == [[], ["s1"], ["s2"]]
    assert step_dependencies(spec) == {"s1": set(), "s2": {"s1"}, "s3": {"s2"}}
    assert pipeline.validate() == []
    s1.run_after(s3)
    assert any("cycle" in p for p in Pipeline(fake_workspace(), [s3]).validate())
    with pytest.raises(ValueError, match="cannot run after itself"):
        s1.run_after(s1)
    with pytest.raises(TypeError, match="run_after needs a step"):
        s1.run_after("s2")  # type: ignore[arg-type]


def test_pipeline_data_only_in_arguments_is_wired_as_azure_ml_does(tmp_path: Path) -> None:
    """A PipelineData named only in a step's arguments is that step's output, unless another
    step lists it in outputs (then it is an input); consumers find the producer."""
    ds: Any = FakeDatastore()
    data = PipelineData("data", datastore=ds)
    _step(tmp_path, "write", arguments=["--out", data])
    read = _step(tmp_path, "read", arguments=["--in", data], inputs=[data])
    spec = _spec(Pipeline(fake_workspace(), [read]), tmp_path)
    w, r = spec.steps
    assert (w.name, r.name) == ("write", "read")
    assert w.outputs == [StepOutput(name="data", datastore=ds.name)]
    assert w.arguments[1] == OutputArg(name="data")
    assert r.inputs == [PipelineDataInput(name="data", mode="mount")]
    assert step_dependencies(spec)["read"] == {"write"}

    declared = PipelineData("declared", datastore=ds)
    _step(tmp_path, "producer", outputs=[declared], arguments=[declared])
    consumer = _step(tmp_path, "consumer", arguments=[declared])
    p_spec, c_spec = _spec(Pipeline(fake_workspace(), [consumer]), tmp_path).steps
    assert p_spec.name == "producer"
    assert c_spec.outputs == []
    assert c_spec.inputs == [PipelineDataInput(name="declared", mode="mount")]

    both = PipelineData("both", datastore=ds)
    x = _step(tmp_path, "x", arguments=[both])
    y = _step(tmp_path, "y", arguments=[both])
    problems = Pipeline(fake_workspace(), [x, y]).validate()
    assert any("'both' is produced by two steps, 'x' and 'y'" in p for p in problems)


def test_provisioning_configuration_records_the_pool_and_refuses_azure_options() -> None:
    """vm_size, min/max nodes and tags are sent as given; options configuring Azure
    infrastructure raise NotSupportedError naming the parameter."""
    from headrace.core.compute import AmlCompute

    config = AmlCompute.provisioning_configuration(
        vm_size="STANDARD_D2_V2", min_nodes=1, max_nodes=4, tags={"team": "ml"}
    )
    assert config.kind == "amlcompute"
    assert config.to_body() == {
        "vm_size": "STANDARD_D2_V2",
        "vm_priority": "dedicated",
        "min_nodes": 1,
        "max_nodes": 4,
        "idle_seconds_before_scaledown": 1800,
        "tags": {"team": "ml"},
        "description": "",
    }
    for option in ({"vnet_name": "v"}, {"admin_username": "me"}, {"enable_node_public_ip": False}):
        with pytest.raises(NotSupportedError, match=f"{next(iter(option))}=") as info:
            AmlCompute.provisioning_configuration(vm_size="x", **option)
        assert "pool of step runners" in str(info.value)


def test_create_needs_a_provisioning_configuration() -> None:
    """Passing anything else to ComputeTarget.create is a ComputeTargetException naming
    what to pass, before any request."""
    from headrace.core.compute import ComputeTarget
    from headrace.exceptions import ComputeTargetException

    with pytest.raises(ComputeTargetException, match="provisioning_configuration"):
        ComputeTarget.create(fake_workspace(), "cpu", {"vm_size": "x"})


def test_runners_wanted_keeps_at_least_one_per_target() -> None:
    """Each registered target but ``local`` wants min_nodes runners, at least one, also for
    a config that does not say."""
    targets: dict[str, dict[str, Any]] = {
        "local": {},
        "zero": {"min_nodes": 0},
        "three": {"min_nodes": 3, "max_nodes": 4},
        "odd": {"min_nodes": "many"},
        "bare": {},
    }
    assert runners_wanted(targets, "local") == {"zero": 1, "three": 3, "odd": 1, "bare": 1}


def test_datapath_becomes_a_data_reference_and_refuses_path_on_compute() -> None:
    """DataPath plus a binding is a DataReference of that path and mode; a chosen
    path_on_compute, other modes and a DataPath parameter default are refused by name."""
    from headrace.data.datapath import DataPath, DataPathComputeBinding

    ds: Any = FakeDatastore()
    path = DataPath(datastore=ds, path_on_datastore="iris/iris.csv", name="iris")
    ref = path.create_data_reference("raw", DataPathComputeBinding(mode="download"))
    assert (ref.name, ref.path_on_datastore, ref.mode, ref.datastore) == (
        "raw",
        "iris/iris.csv",
        "download",
        ds,
    )
    assert path.create_data_reference().mode == "mount"
    assert path.create_data_reference().name == "iris"
    assert DataPath.create_from_data_reference(ref).path_on_datastore == "iris/iris.csv"
    with pytest.raises(NotSupportedError, match="path_on_compute"):
        DataPathComputeBinding(path_on_compute="/data")
    with pytest.raises(NotSupportedError, match="mode='upload'"):
        DataPathComputeBinding(mode="upload")
    with pytest.raises(NotSupportedError, match="DataPath default"):
        PipelineParameter("input", default_value=path)  # type: ignore[arg-type]


def test_run_details_draws_the_live_table_of_a_run() -> None:
    """show() waits with the live table and returns the final status; the Jupyter widget's
    options are refused and a non-run is a TypeError."""
    from headrace.widgets import RunDetails

    class FakeRun:
        calls: list[bool] = []

        def wait_for_completion(self, show_output: bool = True) -> str:
            self.calls.append(show_output)
            return "Completed"

    run = FakeRun()
    assert RunDetails(run).show() == "Completed"
    assert run.calls == [True]
    with pytest.raises(NotSupportedError, match="widget_settings"):
        RunDetails(run).show(widget_settings={"x": 1})
    with pytest.raises(TypeError, match="PipelineRun"):
        RunDetails("run-id")
