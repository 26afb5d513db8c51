"""``azureml.core.script_run_config``: what to run (a script with arguments, or any command),
from which source directory, in which environment, on which compute, with how many
processes. In a pipeline it is the ``runconfig`` of a ``CommandStep``."""

from __future__ import annotations

import os
from typing import Any

from headrace.core.compute.compute import ComputeTarget
from headrace.distributed import MpiConfiguration, PyTorchConfiguration
from headrace.environment import Environment, RunConfiguration
from headrace.errors import NotSupportedError

__all__ = ["MpiConfiguration", "PyTorchConfiguration", "ScriptRunConfig"]

DistributedConfig = MpiConfiguration | PyTorchConfiguration


class ScriptRunConfig:
    """v1's ``ScriptRunConfig``: ``script`` + ``arguments``, or ``command`` (a list whose
    items are joined with spaces into one command line, as Azure ML does, or a string).

    Why refused rather than ignored: ``resume_from`` (a checkpoint of an earlier run) and
    ``docker_runtime_config`` change what the job does, and a run that silently ignored them
    would not be the run the user asked for.
    """

    MAX_DURATION_SECONDS_DEFAULT = 2592000

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        script: str | None = None,
        arguments: list[Any] | None = None,
        run_config: RunConfiguration | None = None,
        _telemetry_values: Any = None,
        compute_target: ComputeTarget | str | None = None,
        environment: Environment | None = None,
        distributed_job_config: DistributedConfig | None = None,
        resume_from: Any = None,
        max_run_duration_seconds: int = MAX_DURATION_SECONDS_DEFAULT,
        command: list[Any] | str | None = None,
        docker_runtime_config: Any = None,
    ) -> None:
        if command and (script or arguments):
            raise ValueError(
                "ScriptRunConfig: give either command=[...] or script= with arguments=, not "
                "both; to run a script through command, write command=['python', 'train.py', ...]"
            )
        if resume_from is not None:
            raise NotSupportedError(
                "ScriptRunConfig(resume_from=...) (resuming from an earlier run's checkpoint)",
                "pass the checkpoint as an input of the step (a PipelineData or dataset) and "
                "load it in the script",
            )
        if docker_runtime_config is not None:
            raise NotSupportedError(
                "ScriptRunConfig(docker_runtime_config=...)",
                "steps run as processes on a runner; set what the image needs in the Environment",
            )
        if distributed_job_config is not None and not isinstance(
            distributed_job_config, MpiConfiguration | PyTorchConfiguration
        ):
            raise TypeError(
                "ScriptRunConfig(distributed_job_config=...) takes an MpiConfiguration or a "
                f"PyTorchConfiguration, got {distributed_job_config!r}"
            )
        if not isinstance(max_run_duration_seconds, int) or max_run_duration_seconds <= 0:
            raise ValueError(
                f"ScriptRunConfig(max_run_duration_seconds={max_run_duration_seconds!r}): give "
                "a positive number of seconds"
            )
        self.source_directory = os.fspath(source_directory)
        self.script = script
        self.arguments = list(arguments or [])
        self.command = command
        self.run_config = run_config or RunConfiguration()
        if environment is not None:
            self.run_config.environment = environment
        #: the compute target's name (None: the step's own, else "local")
        self.compute_target = (
            compute_target.name if isinstance(compute_target, ComputeTarget) else compute_target
        )
        self.distributed_job_config = distributed_job_config
        self.max_run_duration_seconds = max_run_duration_seconds

    @property
    def environment(self) -> Environment:
        return self.run_config.environment

    @property
    def processes(self) -> int:
        """How many processes the step starts (1 without a distributed configuration)."""
        config = self.distributed_job_config
        return config.processes if config is not None else 1

    def command_items(self) -> list[Any]:
        """What runs, as command items: the command, or ``python SCRIPT ARGUMENTS...``."""
        if self.command:
            return [self.command] if isinstance(self.command, str) else list(self.command)
        if self.script:
            return ["python", self.script, *self.arguments]
        raise ValueError(
            "ScriptRunConfig: nothing to run; give script='train.py' (with arguments=) or "
            "command=['python', 'train.py', ...]"
        )

    def __repr__(self) -> str:
        what = f"command={self.command!r}" if self.command else f"script={self.script!r}"
        return f"ScriptRunConfig(source_directory={self.source_directory!r}, {what})"
