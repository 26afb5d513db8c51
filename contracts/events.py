"""Every event of the run flow, one frozen pydantic model each.

Events travel as CloudEvents in Kafka binary mode (see ``contracts.envelope``): the model's
``type`` is the ``ce_type`` header and its JSON is the message value. ``key`` says which
partition key the event uses: the run id for everything whose order matters per run, and the
step attempt for dispatches, so that the steps of one large fan-out spread over every runner.

Commands go to one phase service; results come back to the scheduler; *public* events are the
contract other systems subscribe to (documented in ``contracts/schemas``).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.environment import EnvironmentDefinition
from contracts.spec import MAX_PROCESS_COUNT, DatasetInput, ParameterValue, PipelineSpec
from contracts.status import AttemptOutcome

__all__ = [
    "ALL_EVENTS",
    "PUBLIC_EVENTS",
    "ArtifactUploadFailed",
    "ArtifactUploadRequested",
    "ArtifactsUploaded",
    "DataMountFailed",
    "DataMountRequested",
    "DataMounted",
    "DataTransferRequested",
    "EnvironmentFailed",
    "EnvironmentReady",
    "EnvironmentRequested",
    "Event",
    "MountedInput",
    "OutputTarget",
    "ResolvedInput",
    "RunCancelRequested",
    "RunCanceled",
    "RunCompleted",
    "RunFailed",
    "RunRequested",
    "RunStarted",
    "ScheduleFired",
    "SnapshotFailed",
    "SnapshotReady",
    "SnapshotRequested",
    "StepAttemptFinished",
    "StepAttemptStarted",
    "StepCanceled",
    "StepCompleted",
    "StepDispatched",
    "StepFailed",
    "StepRetrying",
    "StepReused",
    "StepStarted",
    "UploadedOutput",
    "event_class",
]


class Event(BaseModel):
    """Base of every event: frozen, strict about unknown fields, keyed by run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ClassVar[str]
    public: ClassVar[bool] = False

    run_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

    @property
    def key(self) -> str:
        """The Kafka message key: events of one run stay ordered on one partition."""
        return self.run_id

    @property
    def subject(self) -> str | None:
        """The CloudEvents ``subject``: the step an event is about, if any."""
        return None


class _StepEvent(Event):
    step: str
    attempt: int = Field(default=1, ge=1)

    @property
    def subject(self) -> str | None:
        return self.step


# --- run requests (public input) ---------------------------------------------------------


class RunRequested(Event):
    """Start a run. Emitted by the API, the SDK or any other system.

    The run's pipeline is exactly one of: ``pipeline`` (a full spec), ``published_pipeline_id``
    (a published pipeline), or ``pipeline_endpoint`` (an endpoint's id or name) with an optional
    ``pipeline_version`` (its default version when absent). ``parameters`` are the parameter
    assignments; unknown names or wrong types fail the run before any step starts.
    """

    type = "headrace.run.requested.v1"
    public = True

    experiment: str = Field(min_length=1, max_length=255)
    pipeline: PipelineSpec | None = None
    published_pipeline_id: str | None = Field(default=None, min_length=1, max_length=255)
    pipeline_endpoint: str | None = Field(default=None, min_length=1, max_length=255)
    pipeline_version: str | None = Field(default=None, min_length=1, max_length=100)
    parameters: dict[str, ParameterValue] = Field(default_factory=dict)
    regenerate_outputs: bool = False
    submitted_by: str | None = None

    @model_validator(mode="after")
    def _one_pipeline(self) -> Self:
        given = [
            f
            for f in ("pipeline", "published_pipeline_id", "pipeline_endpoint")
            if getattr(self, f) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'pipeline', 'published_pipeline_id' or "
                f"'pipeline_endpoint' (got {given or 'none'})"
            )
        if self.pipeline_version is not None and self.pipeline_endpoint is None:
            raise ValueError("'pipeline_version' is only valid with 'pipeline_endpoint'")
        return self


class RunCancelRequested(Event):
    """Cancel the run: kill its running steps, dispatch nothing more. From the API or anyone."""

    type = "headrace.run.cancel_requested.v1"
    public = True

    reason: str = ""


# --- phase commands and results ----------------------------------------------------------


class SnapshotRequested(Event):
    """Verify the snapshot whose manifest has this digest and make it available."""

    type = "headrace.snapshot.requested.v1"
    digest: str


class SnapshotReady(Event):
    """The snapshot's manifest and every blob were checked against their digests."""

    type = "headrace.snapshot.ready.v1"
    digest: str
    files: int
    bytes: int


class SnapshotFailed(Event):
    """The snapshot cannot be used; ``reason`` says which path or blob is wrong."""

    type = "headrace.snapshot.failed.v1"
    digest: str
    reason: str


class EnvironmentRequested(Event):
    """Resolve the environment ``environment`` (a definition key, or "default") for the run's
    steps, building it when no build of the same definition exists."""

    type = "headrace.environment.requested.v1"
    environment: str
    definition: EnvironmentDefinition | None = None


class EnvironmentReady(Event):
    """The environment can be used by runners; ``digest`` identifies its exact content."""

    type = "headrace.environment.ready.v1"
    environment: str
    digest: str
    python: str


class EnvironmentFailed(Event):
    """The environment could not be resolved or built."""

    type = "headrace.environment.failed.v1"
    environment: str
    reason: str


class ResolvedInput(BaseModel):
    """Where an input's data is: a path on a datastore, and how the step wants it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    datastore: str
    path: str
    mode: Literal["mount", "download"]
    #: a committed ``PipelineData`` output: empty when the producing step wrote no file
    pipeline_data: bool = False


class MountedInput(BaseModel):
    """An input bound into scratch: the path the step sees and how it got there."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    local_path: str
    #: ``link``: a symbolic link to a local datastore; ``copy``: the data in scratch (from the
    #: node's data cache for remote datastores); ``fuse``: a read-only rclone mount of a remote
    #: datastore, unmounted by the runner when the step ends.
    method: Literal["link", "copy", "fuse"]


class OutputTarget(BaseModel):
    """Where an output is committed: a datastore and a path on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    datastore: str
    path: str


class StepDispatched(_StepEvent):
    """Run the step on a runner of ``compute_target``. Parameters are already substituted."""

    type = "headrace.step.dispatched.v1"
    compute_target: str
    script_name: str
    snapshot: str
    environment: str
    arguments: list[dict[str, str]]
    inputs: list[MountedInput]
    #: where the runner's upload request will commit each output, decided by the scheduler
    outputs: list[OutputTarget]
    timeout_seconds: int
    #: dataset inputs, for ``Run.get_context().input_datasets`` (their files are ``inputs``)
    datasets: list[DatasetInput] = Field(default_factory=list)
    #: a command step's command line as items (``literal`` text, ``input``/``output`` paths,
    #: parameter ``value``s); empty for a script step, which runs ``script_name``
    command: list[dict[str, str]] = Field(default_factory=list)
    #: how many processes of the command to start, each with its rank variables
    processes: int = Field(default=1, ge=1, le=MAX_PROCESS_COUNT)

    @property
    def key(self) -> str:
        """Dispatches spread by step so that one run's fan-out reaches every runner."""
        return f"{self.run_id}/{self.step}"


class DataTransferRequested(_StepEvent):
    """Run a ``DataTransferStep``: copy ``source`` to ``destination`` between datastores.

    Done by the data services (the artifact uploader), not a runner; the result is the same
    ``ArtifactsUploaded`` a script step's outputs produce, so the scheduler treats both alike.
    """

    type = "headrace.data.transfer_requested.v1"
    source: ResolvedInput
    destination: OutputTarget


class DataMountRequested(_StepEvent):
    """Bind the step's inputs into its scratch area, then send ``dispatch`` to the runners.

    The scheduler decides the dispatch up front; the data mounter only fills in where the
    inputs are. This saves a round trip through the scheduler on every step's critical path.
    """

    type = "headrace.data.mount_requested.v1"
    inputs: list[ResolvedInput]
    dispatch: StepDispatched


class DataMounted(_StepEvent):
    """Every input of the step is in place; ``notes`` go into the step log."""

    type = "headrace.data.mounted.v1"
    inputs: list[MountedInput]
    notes: list[str] = Field(default_factory=list)


class DataMountFailed(_StepEvent):
    """An input could not be bound (missing object, unknown datastore, ...)."""

    type = "headrace.data.mount_failed.v1"
    reason: str


class StepAttemptStarted(_StepEvent):
    """A runner claimed the attempt and started the script."""

    type = "headrace.step.attempt_started.v1"
    runner_id: str
    pid: int


class StepAttemptFinished(_StepEvent):
    """The script ended (or could not start). ``outcome`` says how."""

    type = "headrace.step.attempt_finished.v1"
    runner_id: str
    outcome: AttemptOutcome
    exit_code: int | None
    duration_ms: int
    error: str | None = None


class ArtifactUploadRequested(_StepEvent):
    """Commit the attempt's logs and metrics, and its outputs if it succeeded.

    Sent by the runner as soon as the script ended (the targets came with the dispatch), and
    carrying the outcome so that the uploader's result tells the scheduler everything.
    """

    type = "headrace.artifacts.upload_requested.v1"
    outputs: list[OutputTarget]
    outcome: AttemptOutcome
    exit_code: int | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == AttemptOutcome.SUCCEEDED


class UploadedOutput(BaseModel):
    """A committed output: where it is and what it holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    datastore: str
    path: str
    files: int
    bytes: int
    digest: str


class ArtifactsUploaded(_StepEvent):
    """Logs, metrics and (on success) outputs are in the datastore and recorded."""

    type = "headrace.artifacts.uploaded.v1"
    outputs: list[UploadedOutput]
    metrics: int
    outcome: AttemptOutcome
    exit_code: int | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == AttemptOutcome.SUCCEEDED


class ArtifactUploadFailed(_StepEvent):
    """The attempt's artifacts could not be committed."""

    type = "headrace.artifacts.upload_failed.v1"
    reason: str


# --- public run and step events ----------------------------------------------------------


class RunStarted(Event):
    """The scheduler accepted the run."""

    type = "headrace.run.started.v1"
    public = True
    experiment: str
    steps: list[str]


class StepStarted(_StepEvent):
    """A runner started the step's script."""

    type = "headrace.step.started.v1"
    public = True
    runner_id: str


class StepCompleted(_StepEvent):
    """The step succeeded and its outputs are committed."""

    type = "headrace.step.completed.v1"
    public = True
    outputs: list[UploadedOutput]


class StepFailed(_StepEvent):
    """The step failed; ``reason`` says why (exit code and stderr tail, or a phase error)."""

    type = "headrace.step.failed.v1"
    public = True
    reason: str
    exit_code: int | None = None


class StepRetrying(_StepEvent):
    """The step gets a new attempt: the script failed and may retry, or its runner was lost."""

    type = "headrace.step.retrying.v1"
    public = True
    reason: str


class StepReused(_StepEvent):
    """The step was not run: an earlier step with the same fingerprint provided its outputs."""

    type = "headrace.step.reused.v1"
    public = True
    source_run_id: str
    source_step: str
    fingerprint: str
    outputs: list[UploadedOutput]


class StepCanceled(_StepEvent):
    """The step was canceled with its run; a running script was killed."""

    type = "headrace.step.canceled.v1"
    public = True


class RunCompleted(Event):
    """Every step of the run completed."""

    type = "headrace.run.completed.v1"
    public = True
    experiment: str


class RunFailed(Event):
    """The run ended because a step failed or the run could not start."""

    type = "headrace.run.failed.v1"
    public = True
    experiment: str
    reason: str
    failed_steps: list[str] = Field(default_factory=list)


class RunCanceled(Event):
    """The run was canceled."""

    type = "headrace.run.canceled.v1"
    public = True
    experiment: str
    reason: str = ""


class ScheduleFired(Event):
    """A schedule started the run ``run_id``: its recurrence was due, or objects under its
    datastore path were added or changed (``changed_paths``). Emitted once per occurrence."""

    type = "headrace.schedule.fired.v1"
    public = True
    schedule_id: str
    schedule_name: str
    experiment: str
    trigger: Literal["recurrence", "datastore"]
    #: the occurrence's due instant (a recurrence) or the poll that saw the change (datastore)
    due_at: datetime
    changed_paths: list[str] = Field(default_factory=list)


ALL_EVENTS: tuple[type[Event], ...] = (
    RunRequested,
    RunCancelRequested,
    SnapshotRequested,
    SnapshotReady,
    SnapshotFailed,
    EnvironmentRequested,
    EnvironmentReady,
    EnvironmentFailed,
    DataMountRequested,
    DataTransferRequested,
    DataMounted,
    DataMountFailed,
    StepDispatched,
    StepAttemptStarted,
    StepAttemptFinished,
    ArtifactUploadRequested,
    ArtifactsUploaded,
    ArtifactUploadFailed,
    RunStarted,
    StepStarted,
    StepCompleted,
    StepFailed,
    StepRetrying,
    StepReused,
    StepCanceled,
    RunCompleted,
    RunFailed,
    RunCanceled,
    ScheduleFired,
)
PUBLIC_EVENTS = tuple(e for e in ALL_EVENTS if e.public)
_BY_TYPE = {e.type: e for e in ALL_EVENTS}


def event_class(type_: str) -> type[Event] | None:
    """The model registered for a ``ce_type``, or None for an unknown type."""
    return _BY_TYPE.get(type_)
