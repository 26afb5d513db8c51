"""``CommandStep``: any command run from a source directory, as v1's
``azureml.pipeline.steps.CommandStep``.

The command is a list (its items joined with spaces into one command line, as Azure ML joins
them) or a string. ``PipelineData``, ``DataReference``, dataset inputs and
``PipelineParameter`` objects among the items become the local path or the value when the step
starts, quoted so that a path or a value is always one word. How the line runs is in
``services/step_runner/command.py``: split into words and started directly, through
``/bin/sh -c`` only when it uses shell syntax.
"""

from __future__ import annotations

import os
from typing import Any

from contracts.environment import EnvironmentDefinition
from contracts.spec import StepSpec
from headrace.core.compute.compute import ComputeTarget
from headrace.core.script_run_config import ScriptRunConfig
from headrace.datarefs import PipelineData
from headrace.errors import NotSupportedError
from headrace.steps import InputLike, PythonScriptStep

__all__ = ["CommandStep"]


class CommandStep(PythonScriptStep):
    """Runs ``command`` (or ``runconfig``'s command or script) in a copy of the source
    directory, with the runconfig's environment, compute target and process count.

    Inputs and outputs are wired as for a ``PythonScriptStep``: objects in the command that
    are not listed in ``inputs``/``outputs`` are inputs, or outputs when no other step
    produces them.
    """

    def __init__(
        self,
        command: list[Any] | str | None = None,
        name: str | None = None,
        compute_target: ComputeTarget | str | None = None,
        runconfig: ScriptRunConfig | None = None,
        runconfig_pipeline_params: dict[str, Any] | None = None,
        inputs: list[InputLike] | None = None,
        outputs: list[PipelineData] | None = None,
        params: dict[str, Any] | None = None,
        source_directory: str | os.PathLike[str] | None = None,
        allow_reuse: bool = True,
        version: str | None = None,
    ) -> None:
        if runconfig is not None and not isinstance(runconfig, ScriptRunConfig):
            raise TypeError(
                f"CommandStep(runconfig=...) takes a ScriptRunConfig, got {runconfig!r}"
            )
        if runconfig_pipeline_params:
            raise NotSupportedError(
                "CommandStep(runconfig_pipeline_params=...) (run configuration fields set by "
                "pipeline parameters)",
                "put the PipelineParameter in the command instead",
            )
        if params:
            raise NotSupportedError(
                "CommandStep(params=...) (values passed as environment variables)",
                "set environment variables on the Environment, or pass values in the command",
            )
        if command is None and runconfig is None:
            raise ValueError(
                "CommandStep: give command=[...] or runconfig=ScriptRunConfig(...) with a "
                "command or script"
            )
        if command is not None:
            items = [command] if isinstance(command, str) else list(command)
        else:
            assert runconfig is not None
            items = runconfig.command_items()
        if not items or not any(isinstance(i, str) and i.strip() for i in items):
            raise ValueError(f"CommandStep: the command {command!r} is empty; give what to run")
        source = source_directory
        if source is None and runconfig is not None:
            source = runconfig.source_directory
        target = compute_target
        if target is None and runconfig is not None:
            target = runconfig.compute_target
        timeout = runconfig.max_run_duration_seconds if runconfig is not None else None
        if timeout == ScriptRunConfig.MAX_DURATION_SECONDS_DEFAULT:
            timeout = None  # v1's 30-day default: leave the runner's own limit
        super().__init__(
            script_name="",
            name=name or "command",
            arguments=items,
            compute_target=target,
            runconfig=runconfig.run_config if runconfig is not None else None,
            inputs=inputs,
            outputs=outputs,
            source_directory=source,
            allow_reuse=allow_reuse,
            timeout_seconds=timeout,
        )
        self.command = items
        self.processes = runconfig.processes if runconfig is not None else 1
        self.version = version

    def to_spec(
        self,
        snapshot: str,
        source_digest: str | None = None,
        environment: EnvironmentDefinition | None = None,
    ) -> StepSpec:
        """The script step's spec with its arguments as the command."""
        spec = super().to_spec(snapshot, source_digest, environment)
        return spec.model_copy(
            update={
                "step_kind": "command",
                "command": spec.arguments,
                "arguments": [],
                "process_count": self.processes,
            }
        )

    def __repr__(self) -> str:
        return f"CommandStep(name={self.name!r}, command={self.command!r})"
