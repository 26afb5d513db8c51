"""``headrace serve snapshotter``."""

from __future__ import annotations

from services.runtime.service import run_service
from services.snapshotter.service import SnapshotterService
from services.snapshotter.settings import SnapshotterSettings


def main() -> None:
    run_service(SnapshotterService(SnapshotterSettings()))


if __name__ == "__main__":
    main()
