"""``RunDetails(run).show()``: the run's steps and their statuses, live, until it ends.

In Azure ML this is a Jupyter widget that refreshes itself while the notebook goes on. Here it
is the live step table of ``PipelineRun.wait_for_completion(show_output=True)`` (rendered by
rich, which draws in a terminal and in Jupyter alike), so ``show()`` returns when the run has
ended. That is what a converted notebook needs: its next cells read the run's results.
"""

from __future__ import annotations

from typing import Any, Protocol

from headrace.errors import NotSupportedError

__all__ = ["RunDetails"]


class _Watchable(Protocol):
    def wait_for_completion(self, show_output: bool = ...) -> str: ...


class RunDetails:
    """Shows a pipeline run's steps live (see the module docstring)."""

    def __init__(self, run_instance: Any) -> None:
        if not callable(getattr(run_instance, "wait_for_completion", None)):
            raise TypeError(
                "RunDetails needs a run returned by Experiment.submit (a PipelineRun), got "
                f"{type(run_instance).__name__}"
            )
        self.run: _Watchable = run_instance

    def show(self, render_lib: Any = None, widget_settings: dict[str, Any] | None = None) -> str:
        """Draw the live step table until the run ends; returns the run's final status."""
        if render_lib is not None or widget_settings:
            raise NotSupportedError(
                "RunDetails.show(render_lib=..., widget_settings=...) (the Jupyter widget's "
                "options)",
                "call show() without them: headrace draws the live step table",
            )
        return self.run.wait_for_completion(show_output=True)
