"""``headrace serve step_runner``."""

from __future__ import annotations

from services.runtime.service import run_service
from services.step_runner.service import StepRunnerService
from services.step_runner.settings import StepRunnerSettings


def main() -> None:
    run_service(StepRunnerService(StepRunnerSettings()))


if __name__ == "__main__":
    main()
