"""``azureml.pipeline.core.pipeline_draft``: a pipeline kept in the API, edited in place, run
and finally published.

The draft's source directories are snapshotted and uploaded when it is created or updated,
so ``submit_run`` and ``publish`` work from any machine, after the sources changed or are
gone: the draft runs what it held when it was last saved.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from headrace.client import parameter_assignments
from headrace.errors import NotSupportedError
from headrace.published import ApiObject

if TYPE_CHECKING:
    from headrace.experiment import PipelineRun
    from headrace.pipeline_model import Pipeline
    from headrace.published import PublishedPipeline
    from headrace.workspace import Workspace

__all__ = ["PipelineDraft"]


def _pipeline_body(workspace: Workspace, pipeline: Pipeline) -> dict[str, Any]:
    from headrace.experiment import prepare_pipeline

    spec, _ = prepare_pipeline(workspace, pipeline, show_progress=False)
    return spec.model_dump(mode="json")


def _labels(given: dict[str, Any] | None) -> dict[str, str] | None:
    return None if given is None else {str(k): str(v) for k, v in given.items()}


class PipelineDraft(ApiObject):
    """A draft as the API last described it; every change returns a fresh view."""

    # -- properties (v1's; id, name and description from ApiObject) -----------------------

    @property
    def experiment_name(self) -> str:
        """headrace's addition: the experiment ``submit_run`` runs in."""
        return str(self._info["experiment_name"])

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._info["tags"])

    @property
    def properties(self) -> dict[str, str]:
        return dict(self._info["properties"])

    @property
    def last_submitted_pipeline_run_id(self) -> str | None:
        return self._info["last_submitted_pipeline_run_id"]  # type: ignore[no-any-return]

    # A draft made from a published pipeline or a run is an Azure studio feature; headrace
    # drafts are made from a Pipeline, so these are always None.
    parent_pipeline_id: str | None = None
    parent_pipeline_run_id: str | None = None
    parent_step_run_ids: builtins.list[str] | None = None
    parent_pipeline_draft_id: str | None = None

    # -- creating and finding ------------------------------------------------------------

    @staticmethod
    def create(
        workspace: Workspace,
        pipeline: Pipeline,
        name: str | None = None,
        description: str | None = None,
        experiment_name: str | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        continue_on_step_failure: bool | None = None,
        tags: dict[str, Any] | None = None,
        properties: dict[str, Any] | None = None,
    ) -> PipelineDraft:
        """Snapshot ``pipeline``'s sources and keep it as a draft (``name`` defaults to the
        pipeline's description or "PipelineDraft", ``experiment_name`` to the draft's name)."""
        name = name or pipeline.description or "PipelineDraft"
        body = {
            "name": name,
            "description": description or "",
            "experiment_name": experiment_name or name,
            "pipeline": _pipeline_body(workspace, pipeline),
            "pipeline_parameters": parameter_assignments(pipeline_parameters),
            "continue_on_step_failure": continue_on_step_failure,
            "tags": _labels(tags) or {},
            "properties": _labels(properties) or {},
        }
        return PipelineDraft(workspace, workspace.client.post("/drafts", body))

    @staticmethod
    def get(workspace: Workspace, id: str) -> PipelineDraft:
        return PipelineDraft(workspace, workspace.client.get(f"/drafts/{quote(id)}"))

    @staticmethod
    def list(
        workspace: Workspace, tags: dict[str, Any] | None = None
    ) -> builtins.list[PipelineDraft]:
        """Every draft, or those carrying all of ``tags`` (key and value)."""
        wanted = [f"{k}={v}" for k, v in (_labels(tags) or {}).items()]
        found = workspace.client.get("/drafts", tag=wanted or None)
        return [PipelineDraft(workspace, d) for d in found]

    # -- changing ------------------------------------------------------------------------

    def update(
        self,
        pipeline: Pipeline | None = None,
        name: str | None = None,
        description: str | None = None,
        experiment_name: str | None = None,
        tags: dict[str, Any] | None = None,
        pipeline_parameters: dict[str, Any] | None = None,
        continue_on_step_failure: bool | None = None,
    ) -> None:
        """Change what is given (None leaves a field as it is); a new ``pipeline`` is
        snapshotted now."""
        body: dict[str, Any] = {
            "name": name,
            "description": description,
            "experiment_name": experiment_name,
            "tags": _labels(tags),
            "continue_on_step_failure": continue_on_step_failure,
        }
        if pipeline is not None:
            body["pipeline"] = _pipeline_body(self.workspace, pipeline)
        if pipeline_parameters is not None:
            body["pipeline_parameters"] = parameter_assignments(pipeline_parameters)
        body = {k: v for k, v in body.items() if v is not None}
        self._info = self.workspace.client.patch(f"/drafts/{quote(self.id)}", body)

    def submit_run(self) -> PipelineRun:
        """Run the draft as it is saved, in its experiment."""
        from headrace.experiment import Experiment, PipelineRun

        created = self.workspace.client.post(f"/drafts/{quote(self.id)}/runs", {})
        self._info = {**self._info, "last_submitted_pipeline_run_id": created["run_id"]}
        return PipelineRun(Experiment(self.workspace, created["experiment"]), created["run_id"])

    def publish(self) -> PublishedPipeline:
        """A published pipeline with the draft's name, description and pipeline."""
        from headrace.published import PublishedPipeline

        info = self.workspace.client.post(f"/drafts/{quote(self.id)}/publish", {})
        return PublishedPipeline(self.workspace, info)

    def delete(self) -> None:
        self.workspace.client.delete(f"/drafts/{quote(self.id)}")

    def get_graph(self) -> Any:
        raise NotSupportedError(
            "PipelineDraft.get_graph (the studio designer's graph object)",
            "read the draft's steps from GET /api/v1/drafts/{id} (its 'pipeline' field)",
        )

    def save(self, path: str | None = None) -> None:
        raise NotSupportedError(
            "PipelineDraft.save (export to a YAML file)",
            "keep the pipeline in code; the draft itself is stored by the API",
        )

    def __repr__(self) -> str:
        return (
            f"PipelineDraft(Name: {self.name}, Id: {self.id}, "
            f"Experiment: {self.experiment_name}, Tags: {self.tags})"
        )
