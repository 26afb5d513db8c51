"""The v1 calls notebooks make first, through the SDK against the real in-process stack:
compute provisioning, workspace listings, tags, pipeline semantics and run inspection."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.runtime.settings import RuntimeSettings
from services.runtime.tokens import create_token
from services.step_runner.service import StepRunnerService
from services.step_runner.settings import StepRunnerSettings
from tests.helpers import eventually
from tests.integration.conftest import Stack, running_stack
from tests.integration.test_datastores_api import sdk_workspace

WRITE = """\
import pathlib, sys
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
(out / "msg.txt").write_text("hello from write")
print("wrote it")
print("a warning", file=sys.stderr)
"""
READ = "import pathlib, sys\nprint((pathlib.Path(sys.argv[1]) / 'msg.txt').read_text())\n"
FAIL = "import sys\nsys.exit(2)\n"
ECHO = "print('echo')\n"


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    for name, text in (
        ("write.py", WRITE),
        ("read.py", READ),
        ("fail.py", FAIL),
        ("echo.py", ECHO),
    ):
        (src / name).write_text(text)
    return src


async def test_compute_target_is_created_found_and_served(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The notebooks' provisioning cell: lookup fails with ComputeTargetException, create
    records vm_size and the pool's bounds, the object has v1's type; a step sent to the new
    target waits on its topic until a runner of that target starts, then runs there."""
    from headrace import Experiment, Pipeline, PythonScriptStep
    from headrace.core.compute import AmlCompute, ComputeTarget
    from headrace.errors import NotSupportedError
    from headrace.exceptions import ComputeTargetException

    ws = sdk_workspace(stack)
    src = _source(tmp_path)

    def provision() -> Any:
        with pytest.raises(ComputeTargetException, match="unknown compute target 'cpu-cluster'"):
            AmlCompute(ws, "cpu-cluster")
        config = AmlCompute.provisioning_configuration(
            vm_size="STANDARD_D2_V2", min_nodes=1, max_nodes=4
        )
        target = ComputeTarget.create(ws, "cpu-cluster", config)
        target.wait_for_completion(show_output=True)
        assert isinstance(target, AmlCompute)
        assert (target.type, target.vm_size, target.provisioning_state) == (
            "AmlCompute",
            "STANDARD_D2_V2",
            "Succeeded",
        )
        assert (
            target.scale_settings.minimum_node_count,
            target.scale_settings.maximum_node_count,
        ) == (1, 4)
        found = ComputeTarget(workspace=ws, name="cpu-cluster")
        assert isinstance(found, AmlCompute)
        assert found.vm_size == "STANDARD_D2_V2"
        assert AmlCompute(ws, "cpu-cluster").name == "cpu-cluster"
        assert ws.compute_targets["cpu-cluster"].type == "AmlCompute"
        assert ws.compute_targets["local"].type == "local"
        assert type(ComputeTarget(ws, "local")) is ComputeTarget
        with pytest.raises(ComputeTargetException, match="is of type local, not AmlCompute"):
            AmlCompute(ws, "local")
        with pytest.raises(ComputeTargetException, match="'cpu-cluster' exists"):
            ComputeTarget.create(ws, "cpu-cluster", config)
        with pytest.raises(ComputeTargetException, match="not a compute target name"):
            ComputeTarget.create(ws, "9-lives", config)
        with pytest.raises(ComputeTargetException, match="'max_nodes': 1 is below min_nodes 2"):
            ComputeTarget.create(
                ws, "small", AmlCompute.provisioning_configuration(min_nodes=2, max_nodes=1)
            )
        with pytest.raises(NotSupportedError, match="min_node_count"):
            target.wait_for_completion(show_output=True, min_node_count=1)
        step = PythonScriptStep(
            name="echo", script_name="echo.py", source_directory=src, compute_target=target
        )
        return Experiment(ws, "compute").submit(Pipeline(ws, [step]), show_progress=False)

    run = await asyncio.to_thread(provision)
    assert "compute target 'cpu-cluster' (AmlCompute): Succeeded" in capsys.readouterr().out
    conn = await asyncpg.connect(stack.settings.database_url)
    try:

        async def dispatched() -> bool:
            phase = await conn.fetchval(
                "SELECT phase FROM steps WHERE run_id = $1 AND name = 'echo'", run.id
            )
            return bool(phase == "dispatched")

        await eventually(dispatched, timeout=30)
    finally:
        await conn.close()
    runner = StepRunnerService(
        StepRunnerSettings(
            **stack.settings.model_dump(), compute_target="cpu-cluster", runner_id="cpu-runner"
        )
    )
    await runner.start()
    try:
        detail = await stack.wait_run(run.id)
    finally:
        await runner.stop(grace=5)
    assert detail["status"] == "Completed", detail
    assert detail["steps"][0]["runner_id"] == "cpu-runner"


async def test_compute_route_validates_and_needs_admin(stack: Stack) -> None:
    """POST /compute refuses unknown fields and bad bounds with 422, a read-only token with
    403, and GET of an unknown target lists the known ones."""
    r = await stack.client.post("/api/v1/compute", json={"name": "gpu", "gpus": 8})
    assert r.status_code == 422, r.text
    assert "gpus" in r.text
    r = await stack.client.post("/api/v1/compute", json={"name": "gpu", "min_nodes": -1})
    assert r.status_code == 422, r.text
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        reader, _ = await create_token(conn, "reader", ["read"])
    finally:
        await conn.close()
    headers = {"Authorization": f"Bearer {reader}"}
    r = await stack.client.post("/api/v1/compute", json={"name": "gpu"}, headers=headers)
    assert r.status_code == 403, r.text
    r = await stack.client.get("/api/v1/compute/gpu", headers=headers)
    assert r.status_code == 404
    assert "known: local" in r.text
    r = await stack.client.post("/api/v1/compute", json={"name": "gpu", "min_nodes": 2})
    assert r.status_code == 201, r.text
    assert r.json()["config"]["max_nodes"] == 2  # defaults to the lower bound


async def test_tags_experiments_and_get_runs(stack: Stack, tmp_path: Path) -> None:
    """Runs carry the tags given at submit; ws.experiments and Experiment.get_runs list
    them, newest first, filtered by tag, type and with their step runs."""
    from headrace import Experiment, Pipeline, PythonScriptStep
    from headrace.experiment import PipelineRun, StepRun

    ws = sdk_workspace(stack)
    src = _source(tmp_path)

    def use_sdk() -> None:
        step = PythonScriptStep(name="echo", script_name="echo.py", source_directory=src)
        exp = Experiment(ws, "tagged")
        plain = exp.submit(Pipeline(ws, [step]), show_progress=False)
        tagged = exp.submit(Pipeline(ws, [step]), tags={"stage": "dev"}, show_progress=False)
        other = Experiment(ws, "other").submit(Pipeline(ws, [step]), show_progress=False)
        for run in (plain, tagged, other):
            assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
        assert tagged.tags == {"stage": "dev"}
        assert tagged.get_tags() == {"stage": "dev"}
        assert plain.tags == {}
        assert {"tagged", "other"} <= set(ws.experiments)
        assert [e.name for e in Experiment.list(ws, "tagged")] == ["tagged"]
        runs = list(exp.get_runs())
        assert [r.id for r in runs] == [tagged.id, plain.id]
        assert all(isinstance(r, PipelineRun) for r in runs)
        assert [r.id for r in exp.get_runs(tags={"stage": "dev"})] == [tagged.id]
        assert [r.id for r in exp.get_runs(tags="stage")] == [tagged.id]
        assert [r.id for r in exp.get_runs(tags={"stage": "prod"})] == []
        assert list(exp.get_runs(type="azureml.StepRun")) == []
        with_children = list(exp.get_runs(tags="stage", include_children=True))
        assert [type(r) for r in with_children] == [PipelineRun, StepRun]
        assert [r.id for r in with_children] == [tagged.id, f"{tagged.id}/echo"]

    await asyncio.to_thread(use_sdk)
    bad = await stack.submit(
        {"steps": [{"name": "x", "script_name": "x.py", "snapshot": "sha256:" + "0" * 64}]},
        tags={"n": 1},
    )
    assert bad.status_code == 422, bad.text


async def test_pipeline_semantics_and_run_inspection(
    runtime_settings: RuntimeSettings, tmp_path: Path
) -> None:
    """A pipeline given only its last step runs the whole chain: an argument-only output
    feeds its consumer, run_after orders a step with no data (two runners, so nothing but
    the dependencies keeps them apart); the runs show children, job logs and outputs as in
    Azure ML."""
    async with running_stack(runtime_settings, runners=2) as stack:
        await _semantics(stack, tmp_path)


async def _semantics(stack: Stack, tmp_path: Path) -> None:
    from headrace import Experiment, Pipeline, PipelineData, PythonScriptStep

    ws = sdk_workspace(stack)
    src = _source(tmp_path)

    def use_sdk() -> None:
        data = PipelineData("data", datastore=ws.get_default_datastore())
        # Only named in its arguments: the producer, found through ``data``.
        PythonScriptStep(
            name="write", script_name="write.py", arguments=[data], source_directory=src
        )
        read = PythonScriptStep(
            name="read",
            script_name="read.py",
            arguments=[data],
            inputs=[data],
            source_directory=src,
        )
        last = PythonScriptStep(name="last", script_name="echo.py", source_directory=src)
        last.run_after(read)
        run = Experiment(ws, "semantics").submit(Pipeline(ws, [last]), show_progress=False)
        assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
        children = run.get_children()
        assert [c.name for c in children] == ["write", "read", "last"]
        assert [c.get_status() for c in children] == ["Completed"] * 3
        (read_run,) = run.find_step_run("read")
        assert read_run.get_job_log().strip() == "hello from write"
        (write_run,) = run.find_step_run("write")
        assert write_run.get_job_log() == "wrote it\na warning\n"
        outputs = write_run.get_outputs()
        assert list(outputs) == ["data"]
        outputs["data"].get_port_data_reference().download(tmp_path / "out")
        assert (tmp_path / "out" / "msg.txt").read_text() == "hello from write"
        with pytest.raises(KeyError, match="outputs: data"):
            write_run.get_output("model")
        assert read_run.get_outputs() == {}
        steps = {s["name"]: s for s in run.get_details()["steps"]}
        assert steps["last"]["started_at"] >= steps["read"]["finished_at"]
        assert steps["read"]["started_at"] >= steps["write"]["finished_at"]
        assert run.find_step_run("nope") == []

    await asyncio.to_thread(use_sdk)


async def test_continue_on_step_failure_at_submit_and_publish(stack: Stack, tmp_path: Path) -> None:
    """continue_on_step_failure given to submit, Pipeline.publish or publish_pipeline
    replaces the pipeline's own setting in what the server runs or publishes."""
    from headrace import Experiment, Pipeline, PythonScriptStep

    ws = sdk_workspace(stack)
    src = _source(tmp_path)

    def use_sdk() -> tuple[str, str]:
        step = PythonScriptStep(name="echo", script_name="echo.py", source_directory=src)
        pipeline = Pipeline(ws, [step])
        assert pipeline.continue_on_step_failure is False
        exp = Experiment(ws, "continue")
        kept = exp.submit(pipeline, continue_on_step_failure=True, show_progress=False)
        plain = exp.submit(pipeline, show_progress=False)
        for run in (kept, plain):
            assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
        published = pipeline.publish("keeps-going", continue_on_step_failure=True)
        assert published.continue_on_step_failure is True
        assert pipeline.publish("stops").continue_on_step_failure is False
        assert kept.publish_pipeline("from-run").continue_on_step_failure is True
        from_run = kept.publish_pipeline("from-run-2", continue_on_step_failure=False)
        assert from_run.continue_on_step_failure is False
        return kept.id, plain.id

    kept, plain = await asyncio.to_thread(use_sdk)
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        rows = await conn.fetch(
            "SELECT run_id, spec->'continue_on_step_failure' AS c FROM runs"
            " WHERE run_id = ANY($1::text[])",
            [kept, plain],
        )
    finally:
        await conn.close()
    assert {r["run_id"]: r["c"] for r in rows} == {kept: "true", plain: "false"}
