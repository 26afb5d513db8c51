"""``headrace serve scheduler``: settings from ``HEADRACE_*``, then run until SIGTERM."""

from __future__ import annotations

from services.runtime.service import run_service
from services.scheduler.service import SchedulerService
from services.scheduler.settings import SchedulerSettings


def main() -> None:
    run_service(SchedulerService(SchedulerSettings()))


if __name__ == "__main__":
    main()
