"""``Experiment.submit`` and the runs it returns: status, live progress, logs, metrics, outputs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rich.console import Console
from rich.live import Live
from rich.table import Table

from contracts.snapshot import safe_relative_path
from contracts.spec import ParameterValue, PipelineSpec
from headrace.client import check_request_size, parameter_assignments
from headrace.errors import NotFoundError, SnapshotError
from headrace.gitinfo import git_info
from headrace.snapshot import check_size, paths_digest, snapshot_directory, upload_snapshot
from headrace.steps import spec_step_name

if TYPE_CHECKING:
    from headrace.pipeline_endpoint import PipelineEndpoint
    from headrace.pipeline_model import Pipeline
    from headrace.published import PublishedPipeline
    from headrace.workspace import Workspace

__all__ = [
    "Experiment",
    "PipelineRun",
    "PortDataReference",
    "StepRun",
    "StepRunOutput",
    "prepare_pipeline",
]

TERMINAL = ("Completed", "Failed", "Canceled")
_STYLE = {
    "Completed": "green",
    "Failed": "red",
    "Running": "cyan",
    "Canceled": "yellow",
    "Skipped": "dim",
    "Queued": "blue",
}


def prepare_pipeline(
    workspace: Workspace,
    pipeline: Pipeline,
    *,
    show_progress: bool = True,
    max_snapshot_bytes: int | None = None,
) -> tuple[PipelineSpec, dict[str, Any]]:
    """Snapshot and upload each source directory (once each, only what the server lacks);
    return the pipeline's spec and the run properties (git information)."""
    snapshots: dict[str, str] = {}
    taken = {}
    for step in pipeline.steps:
        if step.source_path is None:
            continue  # a DataTransferStep: no source directory
        key = str(step.source_path)
        if key not in taken:
            taken[key] = snapshot_directory(step.source_path)
            snapshots[key] = taken[key].digest
        snap = taken[key]
        if step.script_name and not snap.has_file(step.script_name):  # a CommandStep has none
            why = snap.why_excluded(step.script_name)
            raise SnapshotError(
                f"step {step.name!r}: script {step.script_name!r} is not in its source "
                f"directory {key}" + (f" ({why.reason})" if why else "")
            )
    source_digests = {
        i: paths_digest(taken[str(step.source_path)], step.hash_paths)
        for i, step in enumerate(pipeline.steps)
        if step.hash_paths
    }
    for step in pipeline.steps:
        step.environment_definition()  # a bad environment fails before anything is uploaded
    for snap in taken.values():
        check_size(snap, max_snapshot_bytes)
    for snap in taken.values():
        upload_snapshot(workspace.client, snap, show_progress=show_progress)
    git = {key: info for key in taken if (info := git_info(Path(key))) is not None}
    return pipeline.to_spec(snapshots, source_digests), ({"git": git} if git else {})


class Experiment:
    """A named group of runs."""

    def __init__(self, workspace: Workspace, name: str) -> None:
        self.workspace = workspace
        self.name = name
        #: refuse snapshots larger than this (None: $HEADRACE_SNAPSHOT_MAX_BYTES or 2 GiB)
        self.max_snapshot_bytes: int | None = None

    def submit(
        self,
        config: Pipeline | PublishedPipeline | PipelineEndpoint,
        tags: dict[str, str] | None = None,
        *,
        pipeline_parameters: dict[str, ParameterValue] | None = None,
        regenerate_outputs: bool = False,
        continue_on_step_failure: bool | None = None,
        show_progress: bool = True,
        pipeline_version: str | int | None = None,
    ) -> PipelineRun:
        """Snapshot each source directory (uploading only new files), then start a run.

        The signature is v1's ``submit(config, tags=None, **kwargs)`` with the pipeline
        keywords spelled out: ``tags`` label the run (``get_runs(tags=...)`` finds it), and
        ``continue_on_step_failure`` overrides the pipeline's own setting for this run. A
        published pipeline or an endpoint (with ``pipeline_version``) runs as it was published.
        """
        from headrace.pipeline_endpoint import PipelineEndpoint
        from headrace.published import PublishedPipeline

        if isinstance(config, PipelineEndpoint):
            return config.submit(self.name, pipeline_parameters, pipeline_version)
        if isinstance(config, PublishedPipeline):
            return config.submit(self.workspace, self.name, pipeline_parameters)
        spec, properties = prepare_pipeline(
            self.workspace,
            config,
            show_progress=show_progress,
            max_snapshot_bytes=self.max_snapshot_bytes,
        )
        if continue_on_step_failure is not None:
            spec = spec.model_copy(update={"continue_on_step_failure": continue_on_step_failure})
        body = {
            "properties": properties,
            "experiment": self.name,
            "pipeline": spec.model_dump(mode="json"),
            "parameters": parameter_assignments(pipeline_parameters),
            "regenerate_outputs": regenerate_outputs,
            "tags": {str(k): str(v) for k, v in (tags or {}).items()},
        }
        check_request_size("RunRequested", body)
        created = self.workspace.client.post("/runs", body)
        return PipelineRun(self, created["run_id"])

    def get_runs(
        self,
        type: str | None = None,
        tags: str | dict[str, str] | None = None,
        properties: str | dict[str, Any] | None = None,
        include_children: bool = False,
    ) -> Iterator[PipelineRun | StepRun]:
        """This experiment's runs, newest first (the latest 1000).

        ``tags``/``properties``: a name the run must have, or names and the values they must
        have. Every headrace run is a pipeline run (``azureml.PipelineRun``), so another
        ``type`` matches nothing. ``include_children`` yields each run's step runs after it."""
        if type is not None and type != PipelineRun.RUN_TYPE:
            return
        rows = self.workspace.client.get("/runs", experiment=self.name, limit=1000)
        for row in rows:
            if tags is not None and not _matches(row.get("tags") or {}, tags):
                continue
            run = PipelineRun(self, row["run_id"])
            if properties is not None and not _matches(run.properties, properties):
                continue
            yield run
            if include_children:
                yield from run.get_children()

    @staticmethod
    def list(workspace: Workspace, experiment_name: str | None = None) -> list[Experiment]:
        """The experiments that have runs (only ``experiment_name``, when given)."""
        return [
            Experiment(workspace, name)
            for name in workspace.experiments
            if experiment_name is None or name == experiment_name
        ]

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r})"


def _matches(have: dict[str, Any], wanted: str | dict[str, Any]) -> bool:
    """``wanted`` as v1's tag and property filters read it: a name, or names with values."""
    if isinstance(wanted, str):
        return wanted in have
    return all(k in have and str(have[k]) == str(v) for k, v in wanted.items())


class PortDataReference:
    """A committed output of a step run."""

    def __init__(self, step: StepRun, name: str) -> None:
        self.step = step
        self.name = name
        base = f"/runs/{step.run.id}/steps/{quote(step.name)}/outputs/{quote(name)}"
        self._base = base
        info = step.run.workspace.client.get(base)
        self.datastore_name: str = info["datastore"]
        self.path_on_datastore: str = info["path"]
        self.files: list[dict[str, Any]] = info["files"]

    def download(self, local_path: str | os.PathLike[str], overwrite: bool = True) -> str:
        """Download the output's files into ``local_path``; returns that path."""
        dest = Path(local_path)
        client = self.step.run.workspace.client
        for f in self.files:
            # The listing comes from the server: never write outside ``local_path``.
            out = dest / safe_relative_path(str(f["path"]))
            if out.exists() and not overwrite:
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(client.get_bytes(f"{self._base}/files/{quote(f['path'])}"))
        return str(dest)


class StepRunOutput:
    """One output of a step run, as ``StepRun.get_outputs()`` lists it."""

    def __init__(self, step: StepRun, name: str) -> None:
        self.step = step
        self.name = name

    def get_port_data_reference(self) -> PortDataReference:
        """Where the output's files are (download them with ``.download(path)``)."""
        return PortDataReference(self.step, self.name)

    def __repr__(self) -> str:
        return f"StepRunOutput({self.name!r}, step={self.step.name!r})"


class StepRun:
    """One step of a pipeline run."""

    def __init__(self, run: PipelineRun, detail: dict[str, Any]) -> None:
        self.run = run
        self.name: str = detail["name"]
        self._detail = detail

    @property
    def id(self) -> str:
        """``<run id>/<step name>``: a step run is its pipeline run's step of that name (the
        API's ``/runs/{run_id}/steps/{step}``)."""
        return f"{self.run.id}/{self.name}"

    @property
    def type(self) -> str:
        return "azureml.StepRun"

    def get_details(self) -> dict[str, Any]:
        for s in self.run.get_details()["steps"]:
            if s["name"] == self.name:
                self._detail = s
        return self._detail

    def get_status(self) -> str:
        return str(self.get_details()["status"])

    def _log(self, stream: str) -> str:
        path = f"/runs/{self.run.id}/steps/{quote(self.name)}/logs/{stream}"
        return self.run.workspace.client.get_bytes(path).decode("utf-8", "replace")

    def get_stdout(self) -> str:
        return self._log("stdout")

    def get_stderr(self) -> str:
        return self._log("stderr")

    def get_mount_log(self) -> str:
        """How the step's inputs were bound, when that needs saying (a mount that fell back
        to a copy); empty when there was nothing to say."""
        try:
            return self._log("mount")
        except NotFoundError:
            return ""

    def get_logs(self) -> dict[str, str]:
        return {"stdout": self.get_stdout(), "stderr": self.get_stderr()}

    def get_job_log(self) -> str:
        """What the script printed: its stdout, then its stderr.

        Azure ML's job log is the log of the process that ran the script; here that process
        is the script itself, so its two streams are the whole log. Empty before it ran."""
        out = []
        for stream in ("stdout", "stderr"):
            try:
                text = self._log(stream)
            except NotFoundError:
                continue
            if text:
                out.append(text if text.endswith("\n") else text + "\n")
        return "".join(out)

    def get_outputs(self) -> dict[str, StepRunOutput]:
        """The step's committed outputs by name (none until it completed)."""
        return {o["name"]: StepRunOutput(self, o["name"]) for o in self.get_details()["outputs"]}

    def get_output(self, name: str) -> StepRunOutput:
        """One committed output; ``KeyError`` naming those there are when it is not."""
        outputs = self.get_outputs()
        if name not in outputs:
            raise KeyError(
                f"step {self.name!r} has no committed output {name!r}; outputs: "
                f"{', '.join(outputs) or 'none yet'}"
            )
        return outputs[name]

    @property
    def tags(self) -> dict[str, str]:
        """Steps carry no tags of their own in headrace: always empty."""
        return {}

    def get_tags(self) -> dict[str, str]:
        return self.tags

    def get_metrics(self) -> dict[str, Any]:
        """Metrics by name; a name logged several times maps to the list of its values."""
        rows = self.run.workspace.client.get(
            f"/runs/{self.run.id}/steps/{quote(self.name)}/metrics"
        )
        out: dict[str, Any] = {}
        for r in rows:
            if r["name"] in out:
                prev = out[r["name"]]
                out[r["name"]] = (
                    [*prev, r["value"]] if isinstance(prev, list) else [prev, r["value"]]
                )
            else:
                out[r["name"]] = r["value"]
        return out

    def get_output_data(self, name: str) -> PortDataReference:
        return PortDataReference(self, name)

    def __repr__(self) -> str:
        return f"StepRun({self.name!r}, run={self.run.id!r})"


class PipelineRun:
    """A submitted pipeline run."""

    #: Azure ML's ``type`` of a pipeline run
    RUN_TYPE = "azureml.PipelineRun"

    def __init__(self, experiment: Experiment, run_id: str) -> None:
        self.experiment = experiment
        self.workspace = experiment.workspace
        self.id = run_id

    @property
    def type(self) -> str:
        return self.RUN_TYPE

    @property
    def tags(self) -> dict[str, str]:
        """The labels given at submit (``Experiment.submit(..., tags=)``)."""
        return dict(self.get_details().get("tags") or {})

    def get_tags(self) -> dict[str, str]:
        return self.tags

    @property
    def properties(self) -> dict[str, Any]:
        """Facts recorded with the run, such as the git commit of each source directory."""
        return dict(self.get_details().get("properties") or {})

    def get_properties(self) -> dict[str, Any]:
        return self.properties

    def get_details(self) -> dict[str, Any]:
        detail: dict[str, Any] = self.workspace.client.get(f"/runs/{self.id}")
        return detail

    def get_status(self) -> str:
        return str(self.get_details()["status"])

    def get_steps(self) -> list[StepRun]:
        return [StepRun(self, s) for s in self.get_details()["steps"]]

    def get_children(
        self,
        recursive: bool = False,
        tags: str | dict[str, str] | None = None,
        properties: str | dict[str, Any] | None = None,
        type: str | None = None,
        status: str | None = None,
    ) -> list[StepRun]:
        """The run's step runs (a step run has no children, so ``recursive`` adds none).

        Steps carry no tags or properties here, so asking for any matches nothing."""
        if tags or properties or (type is not None and type != "azureml.StepRun"):
            return []
        steps = self.get_steps()
        return [s for s in steps if status is None or s._detail["status"] == status]

    def find_step_run(self, name: str) -> list[StepRun]:
        """The step runs called ``name`` (the name given in the SDK, or its sanitised form).

        A list, as in Azure ML, where a name need not be unique; in headrace it is, so the
        list has one element, or none when the run has no such step."""
        wanted = {name, spec_step_name(name)}
        return [step for step in self.get_steps() if step.name in wanted]

    def publish_pipeline(
        self,
        name: str,
        description: str = "",
        version: str = "",
        continue_on_step_failure: bool | None = None,
    ) -> PublishedPipeline:
        """Publish this run's pipeline (snapshots pinned) behind its own REST endpoint;
        ``continue_on_step_failure``, when given, overrides the run's setting."""
        from headrace.published import PublishedPipeline

        return PublishedPipeline.create(
            self.workspace,
            name=name,
            description=description,
            version=version,
            run_id=self.id,
            continue_on_step_failure=continue_on_step_failure,
        )

    def cancel(self, reason: str = "") -> None:
        """Cancel the run: running steps are killed, nothing more is dispatched."""
        self.workspace.client.post(f"/runs/{self.id}/cancel", {"reason": reason})

    def wait_for_completion(
        self,
        show_output: bool = True,
        timeout_seconds: float | None = None,
        poll_seconds: float = 0.25,
    ) -> str:
        """Wait for the run to end; with ``show_output`` a live table of its steps."""
        deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
        console = Console()
        detail = self.get_details()
        with (
            Live(self._table(detail), console=console, refresh_per_second=8, transient=False)
            if show_output
            else _NoLive() as live
        ):
            while detail["status"] not in TERMINAL:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"run {self.id} still {detail['status']} after {timeout_seconds} s"
                    )
                time.sleep(poll_seconds)
                detail = self.get_details()
                live.update(self._table(detail))
        if show_output:
            console.print()
        if show_output and detail["status"] == "Failed":
            for s in detail["steps"]:
                if s["status"] == "Failed":
                    console.print(f"[red]step {s['name']} failed:[/red] {s['error']}")
        return str(detail["status"])

    def _table(self, detail: dict[str, Any]) -> Table:
        status = detail["status"]
        table = Table(
            title=f"run {self.id} ({self.experiment.name}): [{_STYLE.get(status, '')}]{status}[/]"
        )
        table.add_column("step")
        table.add_column("status")
        table.add_column("attempt", justify="right")
        table.add_column("waiting for")
        for s in detail["steps"]:
            table.add_row(
                s["name"],
                f"[{_STYLE.get(s['status'], '')}]{s['status']}[/]",
                str(s["attempt"] or ""),
                s.get("waiting_for") or "",
            )
        return table

    def __repr__(self) -> str:
        return f"PipelineRun(id={self.id!r}, experiment={self.experiment.name!r})"


class _NoLive:
    def __enter__(self) -> _NoLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, _: object) -> None:
        return None
