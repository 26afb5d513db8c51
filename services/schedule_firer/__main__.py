"""``headrace serve schedule_firer``."""

from __future__ import annotations

from services.runtime.service import run_service
from services.schedule_firer.service import ScheduleFirerService
from services.schedule_firer.settings import ScheduleFirerSettings


def main() -> None:
    run_service(ScheduleFirerService(ScheduleFirerSettings()))


if __name__ == "__main__":
    main()
