"""``headrace serve image_builder``."""

from __future__ import annotations

from services.image_builder.service import ImageBuilderService
from services.image_builder.settings import ImageBuilderSettings
from services.runtime.service import run_service


def main() -> None:
    run_service(ImageBuilderService(ImageBuilderSettings()))


if __name__ == "__main__":
    main()
