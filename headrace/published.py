"""``PublishedPipeline``: an immutable pipeline behind its own REST endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from contracts.spec import ParameterValue
from headrace.client import parameter_assignments

if TYPE_CHECKING:
    from headrace.experiment import PipelineRun
    from headrace.pipeline_model import Pipeline
    from headrace.workspace import Workspace

__all__ = ["ActiveOrDisabled", "ApiObject", "PublishedPipeline"]


class ApiObject:
    """An object the API describes (``_info``): the fields published pipelines, endpoints,
    schedules and drafts share, read from the latest view the API returned."""

    def __init__(self, workspace: Workspace, info: dict[str, Any]) -> None:
        self.workspace = workspace
        self._info = info

    @property
    def id(self) -> str:
        return str(self._info["id"])

    @property
    def name(self) -> str:
        return str(self._info["name"])

    @property
    def description(self) -> str:
        return str(self._info["description"])


class ActiveOrDisabled(ApiObject):
    """An API object that can be disabled: published pipelines, endpoints, schedules."""

    @property
    def status(self) -> str:
        """'Active' or 'Disabled'."""
        return str(self._info["status"])


class PublishedPipeline(ActiveOrDisabled):
    """A published pipeline: its spec and snapshots are pinned at publish time."""

    @property
    def version(self) -> str:
        return str(self._info["version"])

    @property
    def continue_on_step_failure(self) -> bool:
        """Whether independent branches go on after a step failed, in every run of it."""
        return bool(self._info.get("continue_on_step_failure", False))

    @property
    def endpoint(self) -> str:
        """The URL to POST ``{"ExperimentName": ..., "ParameterAssignments": {...}}`` to."""
        return f"{self.workspace.api_url.rstrip('/')}/api/v1/pipelines/{self.id}/runs"

    @classmethod
    def create(
        cls,
        workspace: Workspace,
        *,
        name: str,
        description: str = "",
        version: str = "",
        run_id: str | None = None,
        pipeline: Pipeline | None = None,
        continue_on_step_failure: bool | None = None,
    ) -> PublishedPipeline:
        """Publish a run's pipeline (``run_id``) or a pipeline object (snapshotted now);
        ``continue_on_step_failure``, when given, overrides the pipeline's setting."""
        body: dict[str, Any] = {"name": name, "description": description, "version": version}
        if continue_on_step_failure is not None:
            body["continue_on_step_failure"] = continue_on_step_failure
        if pipeline is not None:
            from headrace.experiment import prepare_pipeline

            spec, _ = prepare_pipeline(workspace, pipeline, show_progress=False)
            body["pipeline"] = spec.model_dump(mode="json")
        else:
            body["run_id"] = run_id
        return cls(workspace, workspace.client.post("/pipelines", body))

    @classmethod
    def get(cls, workspace: Workspace, id: str) -> PublishedPipeline:
        return cls(workspace, workspace.client.get(f"/pipelines/{quote(id)}"))

    @classmethod
    def list(cls, workspace: Workspace, active_only: bool = True) -> list[PublishedPipeline]:
        rows = workspace.client.get("/pipelines", active_only=str(active_only).lower())
        return [cls(workspace, r) for r in rows]

    def disable(self) -> None:
        """Refuse new runs (the pipeline stays listed with ``active_only=False``)."""
        self._info = {
            **self._info,
            **self.workspace.client.post(f"/pipelines/{quote(self.id)}/disable", {}),
        }

    def enable(self) -> None:
        self._info = {
            **self._info,
            **self.workspace.client.post(f"/pipelines/{quote(self.id)}/enable", {}),
        }

    def submit(
        self,
        workspace: Workspace,
        experiment_name: str,
        pipeline_parameters: dict[str, ParameterValue] | None = None,
    ) -> PipelineRun:
        """Run the published pipeline with new parameter values."""
        from headrace.experiment import Experiment, PipelineRun

        created = workspace.client.post(
            f"/pipelines/{quote(self.id)}/runs",
            {
                "ExperimentName": experiment_name,
                "ParameterAssignments": parameter_assignments(pipeline_parameters),
            },
        )
        return PipelineRun(Experiment(workspace, experiment_name), created["run_id"])

    def __repr__(self) -> str:
        return f"PublishedPipeline(name={self.name!r}, id={self.id!r}, status={self.status!r})"
