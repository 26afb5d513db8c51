"""End to end: `headrace up`, the SDK, the compare-models example, bad input, `headrace down`.

Everything as a user runs it: the stack's processes started by the CLI, the SDK over HTTP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace import (
    ComputeTarget,
    DataReference,
    Datastore,
    Experiment,
    Pipeline,
    PipelineData,
    PythonScriptStep,
    Workspace,
)
from headrace.errors import NotFoundError, PipelineValidationError, SnapshotError
from headrace.exceptions import ComputeTargetException
from headrace.snapshot import snapshot_directory, upload_snapshot
from services.data_mounter.fuse import FuseMounter
from tests.servers import AzuriteServer, SeaweedServer, azurite, seaweedfs

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
# The S3 server's session fixture, imported so that pytest finds it in this module.
SERVER_FIXTURES = (seaweedfs, azurite)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEADRACE_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=240,
        check=False,
    )


@pytest.fixture(scope="module")
def stack_home() -> Iterator[Path]:
    """An embedded stack started with `headrace up`, stopped with `headrace down`.

    Its home is outside pytest's temporary tree (PostgreSQL runs as another user when we are
    root, and pytest makes its tree private).
    """
    home = Path(tempfile.mkdtemp(prefix="headrace-e2e-"))
    up = cli(home, "up", "--runners", "2")
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield home
    finally:
        down = cli(home, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopped" in down.stdout
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def workspace(stack_home: Path) -> Workspace:
    return Workspace.from_config(stack_home / "config.json")


def test_compare_models_example_completes(workspace: Workspace, tmp_path: Path) -> None:
    """The seed's pipeline runs: every step Completed, report downloaded, metrics logged."""
    from examples.compare_models.pipeline import build

    run = Experiment(workspace, "e2e").submit(build(workspace), show_progress=False)
    # a liveness bound, not a timing: the first run builds the numpy + scikit-learn
    # environment, which takes minutes on a loaded 2-core machine
    status = run.wait_for_completion(show_output=False, timeout_seconds=300)
    # on failure, say which step failed and why (the error and the stderr it kept)
    why = [
        (s.name, s.get_status(), s.get_details().get("error"), s.get_stderr()[-2000:])
        for s in run.get_steps()
    ]
    assert status == "Completed", why
    assert [s.get_status() for s in run.get_steps()] == ["Completed"] * 3
    (compare,) = run.find_step_run("compare")
    compare.get_output_data("report").download(tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "Winner: **linear**" in report
    assert compare.get_metrics()["winner"] == "linear"
    assert "trained on 300 rows" in run.find_step_run("train")[0].get_stdout()
    git = run.get_details()["properties"]["git"]
    (src_git,) = git.values()
    assert len(src_git["commit"]) == 40


def test_failing_step_keeps_stderr_and_stops_downstream(
    workspace: Workspace, tmp_path: Path
) -> None:
    """A script exiting non-zero fails the run; its stderr is readable; downstream skipped."""
    (tmp_path / "bad.py").write_text("import sys\nprint('no data', file=sys.stderr)\nsys.exit(3)\n")
    (tmp_path / "next.py").write_text("print('never')\n")
    data = PipelineData("data")
    bad = PythonScriptStep(
        name="bad", script_name="bad.py", outputs=[data], source_directory=tmp_path
    )
    nxt = PythonScriptStep(
        name="next", script_name="next.py", inputs=[data], source_directory=tmp_path
    )
    run = Experiment(workspace, "e2e").submit(Pipeline(workspace, [bad, nxt]), show_progress=False)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Failed"
    (step,) = run.find_step_run("bad")
    assert step.get_status() == "Failed"
    assert step.get_stderr().strip() == "no data"
    assert run.find_step_run("next")[0].get_status() == "Skipped"


def test_bad_pipelines_fail_at_submit_naming_the_step(workspace: Workspace, tmp_path: Path) -> None:
    """Cycle, unknown compute target and missing script are refused before any run exists."""
    (tmp_path / "a.py").write_text("")
    x, y = PipelineData("x"), PipelineData("y")
    a = PythonScriptStep(
        name="a", script_name="a.py", inputs=[y], outputs=[x], source_directory=tmp_path
    )
    b = PythonScriptStep(
        name="b", script_name="a.py", inputs=[x], outputs=[y], source_directory=tmp_path
    )
    exp = Experiment(workspace, "e2e-bad")
    with pytest.raises(PipelineValidationError, match="cycle"):
        exp.submit(Pipeline(workspace, [a, b]), show_progress=False)
    gpu = PythonScriptStep(
        name="g", script_name="a.py", compute_target="gpu", source_directory=tmp_path
    )
    with pytest.raises(PipelineValidationError, match="unknown compute target 'gpu'"):
        exp.submit(Pipeline(workspace, [gpu]), show_progress=False)
    missing = PythonScriptStep(name="m", script_name="nope.py", source_directory=tmp_path)
    with pytest.raises(SnapshotError, match=r"'nope\.py' is not in its source directory"):
        exp.submit(Pipeline(workspace, [missing]), show_progress=False)
    with pytest.raises(ComputeTargetException, match="unknown compute target 'gpu'"):
        ComputeTarget(workspace=workspace, name="gpu")
    with pytest.raises(NotFoundError, match="unknown datastore 'nope'"):
        Datastore(workspace, "nope")
    assert workspace.client.get("/runs", experiment="e2e-bad") == []


def test_new_compute_target_gets_its_own_runners(
    stack_home: Path, workspace: Workspace, tmp_path: Path
) -> None:
    """ComputeTarget.create on the embedded stack starts min_nodes runners for the new
    target (listed by `headrace status`), and a step sent to it runs on one of them."""
    from headrace.core.compute import AmlCompute

    config = AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2", min_nodes=2)
    target = ComputeTarget.create(workspace, "e2e-pool", config)
    target.wait_for_completion(show_output=False)
    assert workspace.compute_targets["e2e-pool"].type == "AmlCompute"
    (tmp_path / "hi.py").write_text("print('hi')\n")
    step = PythonScriptStep(
        name="hi", script_name="hi.py", source_directory=tmp_path, compute_target=target
    )
    run = Experiment(workspace, "e2e-pool").submit(Pipeline(workspace, [step]), show_progress=False)
    assert run.wait_for_completion(show_output=False, timeout_seconds=120) == "Completed"
    assert run.get_details()["steps"][0]["runner_id"].startswith("e2e-pool-runner-")
    deadline = time.monotonic() + 30
    while True:
        status = cli(stack_home, "status").stdout
        if "step_runner-e2e-pool-2" in status or time.monotonic() > deadline:
            break
    assert "step_runner-e2e-pool-1" in status
    assert "step_runner-e2e-pool-2" in status
    assert "step_runner-e2e-pool-3" not in status


def test_datastore_round_trip_and_download_mode(workspace: Workspace, tmp_path: Path) -> None:
    """Files uploaded with upload_files are read by a step in download mode and downloaded."""
    src = tmp_path / "data"
    src.mkdir()
    (src / "n.txt").write_text("21")
    store = workspace.get_default_datastore()
    store.upload(src, target_path="e2e/numbers", overwrite=True, show_progress=False)
    code = tmp_path / "code"
    code.mkdir()
    (code / "double.py").write_text(
        "import sys, pathlib\n"
        "n = int((pathlib.Path(sys.argv[1]) / 'n.txt').read_text())\n"
        "out = pathlib.Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)\n"
        "(out / 'n.txt').write_text(str(2 * n))\n"
    )
    numbers = DataReference(
        datastore=store, data_reference_name="numbers", path_on_datastore="e2e/numbers"
    ).as_download()
    doubled = PipelineData("doubled", datastore=store)
    step = PythonScriptStep(
        name="double",
        script_name="double.py",
        source_directory=code,
        arguments=[numbers, doubled],
        outputs=[doubled],
    )
    run = Experiment(workspace, "e2e").submit(Pipeline(workspace, [step]), show_progress=False)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
    run.find_step_run("double")[0].get_output_data("doubled").download(tmp_path / "out")
    assert (tmp_path / "out" / "n.txt").read_text() == "42"
    assert store.download(tmp_path / "back", prefix="e2e/numbers", show_progress=False) == 1


def test_cli_status_runs_and_cancel(stack_home: Path, workspace: Workspace, tmp_path: Path) -> None:
    """`status` lists live components; `runs cancel` cancels a running run; `runs show` says so."""
    status = cli(stack_home, "status")
    assert status.returncode == 0, status.stderr
    for name in ("postgres", "broker", "scheduler", "step_runner-1", "step_runner-2", "api"):
        assert name in status.stdout
    assert " NO " not in status.stdout
    (tmp_path / "slow.py").write_text("import time\ntime.sleep(120)\n")
    step = PythonScriptStep(name="slow", script_name="slow.py", source_directory=tmp_path)
    run = Experiment(workspace, "e2e-cancel").submit(
        Pipeline(workspace, [step]), show_progress=False
    )
    deadline = time.monotonic() + 60
    while run.find_step_run("slow")[0].get_status() != "Running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.find_step_run("slow")[0].get_status() == "Running", "the step never started"
    cancel = cli(stack_home, "runs", "cancel", run.id)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    assert run.wait_for_completion(show_output=False, timeout_seconds=30) == "Canceled"
    shown = cli(stack_home, "runs", "show", run.id)
    assert "Canceled" in shown.stdout
    again = cli(stack_home, "runs", "cancel", run.id)
    assert again.returncode == 1
    assert "already Canceled" in again.stdout


def test_cli_tokens_create_list_revoke(stack_home: Path, workspace: Workspace) -> None:
    """`tokens create` prints a token once; `list` never shows it; `revoke` makes it 401."""
    import httpx

    created = cli(stack_home, "tokens", "create", "ci-bot", "--scope", "submit")
    assert created.returncode == 0, created.stdout + created.stderr
    token = created.stdout.strip().splitlines()[-1]
    token_id = created.stdout.split("created token ")[1].split()[0]
    runs = f"{workspace.api_url}/api/v1/runs"
    assert httpx.get(runs, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listed = cli(stack_home, "tokens", "list")
    assert token_id in listed.stdout
    assert "ci-bot" in listed.stdout
    assert token not in listed.stdout
    assert cli(stack_home, "tokens", "revoke", token_id).returncode == 0
    assert httpx.get(runs, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    bad = cli(stack_home, "tokens", "create", "x", "--scope", "root")
    assert bad.returncode == 2
    assert "unknown scopes ['root']" in bad.stdout
    assert cli(stack_home, "tokens", "revoke", token_id).returncode == 1


def test_resubmitted_tree_uploads_only_the_change(workspace: Workspace, tmp_path: Path) -> None:
    """A 300-file tree re-uploaded with one changed file sends that file and a small delta,
    and the server's rebuilt manifest runs a step."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(300):
        (src / f"m{i:03d}.py").write_text(f"VALUE = {i}\n" + "#" * 2000)
    (src / "main.py").write_text("import m007\nprint(m007.VALUE)\n")
    cache = tmp_path / "cache"
    first = snapshot_directory(src)
    full = upload_snapshot(workspace.client, first, show_progress=False, manifest_cache=cache)
    (src / "m007.py").write_text("VALUE = 'seven'\n")
    second = snapshot_directory(src)
    sent = upload_snapshot(workspace.client, second, show_progress=False, manifest_cache=cache)
    assert full > 600_000
    assert sent < len("VALUE = 'seven'\n") + 1000
    step = PythonScriptStep(
        name="main", script_name="main.py", source_directory=src, allow_reuse=False
    )
    run = Experiment(workspace, "e2e").submit(Pipeline(workspace, [step]), show_progress=False)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
    assert run.find_step_run("main")[0].get_stdout().strip() == "seven"


def test_seed_publish_flow(workspace: Workspace, stack_home: Path, tmp_path: Path) -> None:
    """run.publish_pipeline, a REST POST with ParameterAssignments, disable/enable, get."""
    import httpx

    from headrace import PipelineEndpoint, PipelineParameter, PublishedPipeline
    from headrace.core.authentication import InteractiveLoginAuthentication
    from headrace.errors import ApiError

    (tmp_path / "echo.py").write_text("import sys\nprint('arg', sys.argv[1])\n")
    param = PipelineParameter(name="pipeline_arg", default_value=10)
    step = PythonScriptStep(
        name="echo",
        script_name="echo.py",
        arguments=[param],
        source_directory=tmp_path,
        allow_reuse=False,
    )
    pipeline = Pipeline(workspace=workspace, steps=[step])
    run = Experiment(workspace, "e2e").submit(pipeline, show_progress=False)
    assert run.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
    published = run.publish_pipeline(
        name="My_Published_Pipeline", description="My Published Pipeline Description", version="1.0"
    )
    body = {"ExperimentName": "My_Pipeline", "ParameterAssignments": {"pipeline_arg": 20}}
    assert httpx.post(published.endpoint, json=body).status_code == 401
    auth_header = InteractiveLoginAuthentication(
        config=stack_home / "config.json"
    ).get_authentication_header()
    response = httpx.post(published.endpoint, headers=auth_header, json=body)
    assert response.status_code == 201, response.text
    rest_run = Experiment(workspace, "My_Pipeline")
    from headrace.experiment import PipelineRun

    by_rest = PipelineRun(rest_run, response.json()["Id"])
    assert by_rest.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
    assert by_rest.find_step_run("echo")[0].get_stdout().strip() == "arg 20"
    again = PublishedPipeline.get(workspace, id=published.id)
    assert again.name == "My_Published_Pipeline"
    again.disable()
    with pytest.raises(ApiError, match="disabled"):
        again.submit(workspace, "x")
    again.enable()
    assert (
        again.submit(workspace, "x").wait_for_completion(show_output=False, timeout_seconds=60)
        == "Completed"
    )
    from_object = pipeline.publish(name="From_Object")
    assert from_object.id in [p.id for p in PublishedPipeline.list(workspace)]

    endpoint = PipelineEndpoint.publish(
        workspace=workspace, name="Echo_Endpoint", pipeline=published, description="echo"
    )
    assert endpoint.add(from_object) == "1"
    url = endpoint.endpoint
    endpoint.set_default_version("1")
    got = PipelineEndpoint.get(workspace=workspace, name="Echo_Endpoint")
    assert got.default_version == "1"
    assert got.endpoint == url
    assert [p.id for p in got.list_pipelines()] == [published.id, from_object.id]
    pinned = got.submit("e2e", pipeline_parameters={"pipeline_arg": 7}, pipeline_version="0")
    assert pinned.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
    assert pinned.find_step_run("echo")[0].get_stdout().strip() == "arg 7"

    # the versioned-endpoint notebook's calls
    assert got.get_default_version() == "1"
    got.set_default(published)
    assert got.get_default_version() == "0"
    versions = got.list_versions()
    assert [(v.version, v.pipeline_id) for v in versions] == [
        ("0", published.id),
        ("1", from_object.id),
    ]
    assert versions[1].pipeline.name == "From_Object"
    assert "Echo_Endpoint" in [e.name for e in PipelineEndpoint.list(workspace, active_only=True)]
    by_experiment = Experiment(workspace, "e2e").submit(
        got, pipeline_parameters={"pipeline_arg": 3}, pipeline_version="1"
    )
    assert by_experiment.wait_for_completion(show_output=False, timeout_seconds=60) == "Completed"
    assert by_experiment.find_step_run("echo")[0].get_stdout().strip() == "arg 3"
    fresh = PipelineEndpoint.publish(
        workspace=workspace, name="From_Pipeline", description="d", pipeline=pipeline
    )
    assert fresh.get_pipeline().name == "From_Pipeline"
    fresh.set_name("Renamed")
    assert fresh.name == "Renamed"
    assert PipelineEndpoint.get(workspace, name="Renamed").id == fresh.id


def test_s3_datastore_and_tabular_dataset(
    workspace: Workspace, seaweedfs: SeaweedServer, tmp_path: Path
) -> None:
    """A user's S3 bucket registered through the SDK: a directory uploaded to it through the
    API, a tabular dataset registered on it and read back as a DataFrame."""
    import uuid

    from headrace import Dataset
    from headrace.dataset import TabularDataset

    cfg = seaweedfs.datastore_config(f"e2e-{uuid.uuid4().hex[:8]}")
    store = Datastore.register_s3_bucket(
        workspace,
        "e2e-s3",
        bucket_name=str(cfg["bucket"]),
        endpoint=str(cfg["endpoint"]),
        access_key_id=str(cfg["access_key_id"]),
        secret_access_key=str(cfg["secret_access_key"]),
        prefix=str(cfg["prefix"]),
    )
    assert store.config["secret_access_key"] == "***"
    src = tmp_path / "iris"
    src.mkdir()
    (src / "part1.csv").write_text("sepal,species\n5.1,setosa\n")
    (src / "part2.csv").write_text("sepal,species\n6.3,virginica\n")
    assert len(store.upload(src, target_path="iris", show_progress=False)) == 2
    iris = Dataset.Tabular.from_delimited_files(path=(store, "iris/")).register(workspace, "iris")
    assert iris.version == 1
    fetched = Dataset.get_by_name(workspace, "iris")
    assert isinstance(fetched, TabularDataset)
    df = fetched.to_pandas_dataframe()
    assert df.to_dict("list") == {"sepal": [5.1, 6.3], "species": ["setosa", "virginica"]}


@pytest.mark.parametrize("mode", ["mount", "download"])
def test_compare_models_with_data_on_s3_and_outputs_on_azure(
    workspace: Workspace,
    seaweedfs: SeaweedServer,
    azurite: AzuriteServer,
    mode: str,
    tmp_path: Path,
) -> None:
    """The example's remote variant: S3 input in both modes, a registered tabular dataset
    through as_named_input, every intermediate output on Azure Blob."""
    from examples.compare_models.remote_data import build
    from headrace import Datastore

    tag = f"cm-{mode}-{uuid.uuid4().hex[:6]}"
    s3 = Datastore.register_s3_bucket(
        workspace,
        "example_s3",
        seaweedfs.bucket,
        endpoint=seaweedfs.endpoint,
        region=seaweedfs.region,
        access_key_id=seaweedfs.access_key_id,
        secret_access_key=seaweedfs.secret_access_key,
        prefix=tag,
        overwrite=True,
    )
    az = Datastore.register_azure_blob_container(
        workspace,
        "example_azure",
        azurite.container,
        azurite.account_name,
        account_key=azurite.account_key,
        endpoint=azurite.endpoint,
        prefix=tag,
        overwrite=True,
    )
    run = Experiment(workspace, "e2e-remote").submit(
        build(workspace, s3, az, mode), show_progress=False
    )
    assert run.wait_for_completion(show_output=False, timeout_seconds=240) == "Completed"
    report = run.find_step_run("compare")[0].get_output_data("report")
    assert report.datastore_name == "example_azure"
    report.download(tmp_path)
    assert "linear" in (tmp_path / "report.md").read_text()
    mount_log = run.find_step_run("train")[0].get_mount_log()
    cannot_mount = FuseMounter(tmp_path / "probe").machine_reason()
    if mode == "download" or cannot_mount is None:
        assert mount_log == ""  # downloaded as asked, or mounted with FUSE
    else:  # this machine cannot mount: a copy, and the log says why
        assert f"cannot be mounted here ({cannot_mount}); copied" in mount_log
    lineage = workspace.client.get("/datasets/compare_models_regression/lineage")
    assert {(x["run_id"], x["step"]) for x in lineage} >= {(run.id, "extract")}


def test_schedules_as_the_v1_notebook_uses_them(
    workspace: Workspace, stack_home: Path, tmp_path: Path
) -> None:
    """The schedule notebook's calls on the running stack: a schedule whose start time comes
    in two seconds fires once there (the stack's firer, the real clock), then list, get,
    disable, enable, update, endpoint and datastore schedules, and the CLI's view."""
    from datetime import UTC, datetime, timedelta

    from headrace.pipeline.core import PipelineEndpoint
    from headrace.pipeline.core.schedule import Schedule, ScheduleRecurrence

    (tmp_path / "train.py").write_text("print('trained')\n")
    step = PythonScriptStep(name="Training_Step", script_name="train.py", source_directory=tmp_path)
    pipeline = Pipeline(workspace=workspace, steps=[step])
    published = pipeline.publish(name="Scheduled", description="Scheduled")
    start = datetime.now(UTC) + timedelta(seconds=2)
    recurrence = ScheduleRecurrence(frequency="Minute", interval=30, start_time=start)
    schedule = Schedule.create(
        workspace=workspace,
        name="My_Schedule",
        pipeline_id=published.id,
        experiment_name="Schedule-run-sample",
        recurrence=recurrence,
        wait_for_provisioning=True,
        description="Schedule Run",
    )
    assert schedule.status == "Active"
    deadline = time.monotonic() + 60
    while (last := schedule.get_last_pipeline_run()) is None:
        assert time.monotonic() < deadline, "the schedule did not fire within 60 s"
        time.sleep(0.2)
    assert last.wait_for_completion(show_output=False, timeout_seconds=120) == "Completed"
    assert len(schedule.get_pipeline_runs()) == 1
    assert [s.id for s in Schedule.list(workspace, pipeline_id=published.id)] == [schedule.id]

    fetched = Schedule.get(workspace, schedule.id)
    fetched.disable(wait_for_provisioning=True)
    assert Schedule.get(workspace, schedule.id).status == "Disabled"
    assert schedule.id not in [s.id for s in Schedule.list(workspace, active_only=True)]
    fetched.enable(wait_for_provisioning=True)
    fetched.update(
        name="My_Updated_Schedule",
        description="Updated_Schedule_Run",
        status="Active",
        wait_for_provisioning=True,
        recurrence=ScheduleRecurrence(frequency="Hour", interval=2),
    )
    updated = Schedule.get(workspace, fetched.id)
    assert (updated.name, updated.status) == ("My_Updated_Schedule", "Active")
    assert updated.recurrence is not None
    assert updated.recurrence.frequency == "Hour"

    on_data = Schedule.create(
        workspace=workspace,
        name="My_Data_Schedule",
        pipeline_id=published.id,
        experiment_name="Schedule-run-sample",
        datastore=Datastore(workspace=workspace, name="workspaceblobstore"),
        wait_for_provisioning=True,
        description="Schedule Run",
    )
    assert (on_data.datastore_name, on_data.polling_interval) == ("workspaceblobstore", 5)
    on_data.disable(wait_for_provisioning=True)

    endpoint = PipelineEndpoint.publish(
        workspace=workspace, name="ScheduledPipelineEndpoint", pipeline=pipeline, description="s"
    )
    for_endpoint = Schedule.create_for_pipeline_endpoint(
        workspace=workspace,
        name="My_Endpoint_Schedule",
        pipeline_endpoint_id=endpoint.id,
        experiment_name="Schedule-run-sample",
        recurrence=ScheduleRecurrence(frequency="Day", interval=2, hours=[22], minutes=[30]),
        description="Schedule_Run",
        wait_for_provisioning=True,
    )
    found = Schedule.get_schedules_for_pipeline_endpoint_id(
        workspace, pipeline_endpoint_id=endpoint.id
    )
    assert [s.id for s in found] == [for_endpoint.id]

    listed = cli(stack_home, "schedules", "list")
    assert listed.returncode == 0, listed.stderr
    assert "My_Updated_Schedule" in listed.stdout
    assert "every 2 Day(s) at 22:30 (UTC)" in listed.stdout
    shown = cli(stack_home, "schedules", "show", schedule.id)
    assert shown.returncode == 0, shown.stderr
    assert last.id in shown.stdout
    assert "Completed" in shown.stdout


def test_pipeline_drafts_as_the_v1_notebook_uses_them(workspace: Workspace, tmp_path: Path) -> None:
    """The drafts notebook's calls on the running stack: create with tags and properties,
    list by tag, get, update with a new pipeline, submit_run (which runs the snapshot taken
    at update, not the source directory as it is now), publish, delete."""
    from headrace.pipeline.core import PipelineDraft

    (tmp_path / "train.py").write_text("print('first')\n")
    step = PythonScriptStep(name="Training_Step", script_name="train.py", source_directory=tmp_path)
    draft = PipelineDraft.create(
        workspace,
        name="TestPipelineDraft",
        description="draft description",
        experiment_name="pipeline_draft_sample",
        pipeline=Pipeline(workspace=workspace, steps=[step]),
        continue_on_step_failure=True,
        tags={"dev": "true"},
        properties={"train": "value"},
    )
    assert [d.id for d in PipelineDraft.list(workspace, tags={"dev": "true"})] == [draft.id]
    assert PipelineDraft.list(workspace, tags={"dev": "false"}) == []
    fetched = PipelineDraft.get(workspace, id=draft.id)
    assert (fetched.name, fetched.tags, fetched.properties) == (
        "TestPipelineDraft",
        {"dev": "true"},
        {"train": "value"},
    )
    assert "TestPipelineDraft" in repr(fetched)

    (tmp_path / "train.py").write_text("print('updated')\n")
    new_step = PythonScriptStep(
        name="New_Training_Step", script_name="train.py", source_directory=tmp_path
    )
    fetched.update(
        name="UpdatedPipelineDraft",
        description="has updated train step",
        pipeline=Pipeline(workspace=workspace, steps=[new_step]),
    )
    (tmp_path / "train.py").write_text("print('edited after the update')\n")
    run = fetched.submit_run()
    assert run.wait_for_completion(show_output=False, timeout_seconds=120) == "Completed"
    assert run.experiment.name == "pipeline_draft_sample"
    steps = run.get_steps()
    assert [s.name for s in steps] == ["New_Training_Step"]
    assert steps[0].get_logs()["stdout"].strip() == "updated"
    assert PipelineDraft.get(workspace, draft.id).last_submitted_pipeline_run_id == run.id

    published = fetched.publish()
    assert (published.name, published.description) == (
        "UpdatedPipelineDraft",
        "has updated train step",
    )
    assert published.continue_on_step_failure is True
    fetched.delete()
    with pytest.raises(NotFoundError):
        PipelineDraft.get(workspace, draft.id)


def test_command_steps_as_v1_code_writes_them(workspace: Workspace, tmp_path: Path) -> None:
    """The CommandStep notebook's shape on one node: a ScriptRunConfig with a one-item command
    line and MpiConfiguration(process_count_per_node=2) runs two ranks whose unmodified
    ``from azureml.core import Run`` logs a metric each; a PipelineData flows from a command
    step into a script-mode ScriptRunConfig; the curated environment and two nodes are
    refused by name."""
    from headrace.core import Environment, ScriptRunConfig
    from headrace.core.runconfig import MpiConfiguration
    from headrace.errors import NotSupportedError
    from headrace.pipeline.steps import CommandStep

    (tmp_path / "train.py").write_text(
        "import os, sys\n"
        "from azureml.core import Run\n"
        "rank = os.environ['RANK']\n"
        "Run.get_context().log('rank_seen', int(rank))\n"
        "print('rank', rank, 'of', os.environ['WORLD_SIZE'], sys.argv[1:])\n"
    )
    (tmp_path / "read.py").write_text(
        "import pathlib, sys\nprint(pathlib.Path(sys.argv[1], 'hello.txt').read_text())\n"
    )
    with pytest.raises(NotSupportedError, match="curated environment"):
        Environment.get(workspace, name="AzureML-TensorFlow-2.3-GPU")
    with pytest.raises(NotSupportedError, match="node_count=2"):
        MpiConfiguration(node_count=2)
    src = ScriptRunConfig(
        source_directory=tmp_path,
        command=["python train.py --epochs 30"],
        distributed_job_config=MpiConfiguration(process_count_per_node=2),
    )
    train = CommandStep(name="train-mnist", runconfig=src)
    greeting = PipelineData("greeting", datastore=workspace.get_default_datastore())
    write = CommandStep(
        name="write",
        command=["cd", greeting, "&& echo hello > hello.txt"],
        outputs=[greeting],
        source_directory=tmp_path,
    )
    read = CommandStep(
        name="read",
        runconfig=ScriptRunConfig(
            source_directory=tmp_path, script="read.py", arguments=[greeting]
        ),
    )
    pipeline = Pipeline(workspace=workspace, steps=[train, write, read])
    run = Experiment(workspace, "train-commandstep-pipeline").submit(pipeline, show_progress=False)
    assert run.wait_for_completion(show_output=False, timeout_seconds=180) == "Completed"
    steps = {s.name: s for s in run.get_steps()}
    lines = sorted(steps["train-mnist"].get_stdout().strip().splitlines())
    assert lines == ["rank 0 of 2 ['--epochs', '30']", "rank 1 of 2 ['--epochs', '30']"]
    assert sorted(steps["train-mnist"].get_metrics()["rank_seen"]) == [0, 1]
    assert steps["read"].get_stdout().strip() == "hello"


def test_model_registry_as_v1_code_uses_it(
    workspace: Workspace, stack_home: Path, tmp_path: Path
) -> None:
    """Model.register of a folder (every file, even one a .gitignore names) and of a single
    file, versions counting up, Model(ws, name) for the latest, Model.list by tags, tag
    changes, download byte for byte, delete, and the CLI's view."""
    from headrace.core import Model
    from headrace.errors import HeadraceError

    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "model.pkl").write_bytes(bytes(range(256)) * 40)
    (folder / ".gitignore").write_text("*.pkl\n")
    first = Model.register(
        workspace,
        model_path=folder,
        model_name="sklearn-mnist",
        tags={"area": "mnist", "type": "sklearn"},
        description="digits",
    )
    second = Model.register(workspace, model_path=folder / "model.pkl", model_name="sklearn-mnist")
    assert (first.version, second.version) == (1, 2)
    assert Model(workspace, name="sklearn-mnist").id == "sklearn-mnist:2"
    tagged = Model.list(workspace, tags=[["area", "mnist"]])
    assert [m.id for m in tagged] == ["sklearn-mnist:1"]
    first.add_tags({"stage": "prod"})
    first.remove_tags(["type"])
    assert Model(workspace, name="sklearn-mnist", version=1).tags == {
        "area": "mnist",
        "stage": "prod",
    }

    target = tmp_path / "downloaded"
    path = Model(workspace, name="sklearn-mnist", version=1).download(target_dir=str(target))
    assert path == str(target / "outputs")
    assert (target / "outputs" / "model.pkl").read_bytes() == bytes(range(256)) * 40
    assert (target / "outputs" / ".gitignore").read_text() == "*.pkl\n"
    with pytest.raises(HeadraceError, match="exist_ok=True"):
        first.download(target_dir=str(target))
    single = second.download(target_dir=str(target / "single"))
    assert Path(single).read_bytes() == bytes(range(256)) * 40

    listed = cli(stack_home, "models", "list", "--name", "sklearn-mnist")
    assert listed.returncode == 0, listed.stderr
    assert "stage=prod" in listed.stdout
    shown = cli(stack_home, "models", "show", "sklearn-mnist", "1")
    assert shown.returncode == 0, shown.stderr
    assert "outputs/model.pkl" in shown.stdout
    assert "10240" in shown.stdout
    second.delete()
    assert Model(workspace, name="sklearn-mnist").version == 1
