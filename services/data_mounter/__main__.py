"""``headrace serve data_mounter``."""

from __future__ import annotations

from services.data_mounter.service import DataMounterService
from services.data_mounter.settings import DataMounterSettings
from services.runtime.service import run_service


def main() -> None:
    run_service(DataMounterService(DataMounterSettings()))


if __name__ == "__main__":
    main()
