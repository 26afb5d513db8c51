"""``headrace serve api``: the service runtime plus uvicorn, stopped together on SIGTERM."""

from __future__ import annotations

import asyncio

import uvicorn

from services.api.service import ApiService
from services.api.settings import ApiSettings
from services.runtime.logging import configure_logging


async def _serve(service: ApiService) -> None:
    s = service.api_settings
    await service.start()
    try:
        config = uvicorn.Config(
            service.app, host=s.api_host, port=s.api_port, log_level="warning", access_log=False
        )
        await uvicorn.Server(config).serve()  # returns on SIGTERM/SIGINT
    finally:
        await service.stop()


def main() -> None:
    settings = ApiSettings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(_serve(ApiService(settings)))


if __name__ == "__main__":
    main()
