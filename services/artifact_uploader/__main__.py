"""``headrace serve artifact_uploader``."""

from __future__ import annotations

from services.artifact_uploader.service import ArtifactUploaderService
from services.artifact_uploader.settings import ArtifactUploaderSettings
from services.runtime.service import run_service


def main() -> None:
    run_service(ArtifactUploaderService(ArtifactUploaderSettings()))


if __name__ == "__main__":
    main()
