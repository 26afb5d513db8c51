"""API wiring: the FastAPI app on top of the shared service runtime (pool, outbox, relay)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.api import (
    compute,
    datasets,
    datastores,
    drafts,
    endpoints,
    environments,
    models,
    schedules,
)
from services.api.errors import ApiError, Invalid
from services.api.handlers import ApiContext, router
from services.api.settings import ApiSettings
from services.runtime.bootstrap import bootstrap_workspace
from services.runtime.catalog import PublishedDisabled, PublishedNotFound
from services.runtime.errors import EventTooLarge
from services.runtime.service import Service
from services.runtime.storage import DatastoreError, InvalidKey, ObjectNotFound, UnknownDatastore
from services.runtime.tokens import ScopeRefused, TokenRefused

__all__ = ["ApiService", "create_app"]


class ApiService(Service):
    """The HTTP gateway. It consumes nothing; it emits run requests through the outbox."""

    name = "api"

    def __init__(self, settings: ApiSettings, *, instance_id: str | None = None) -> None:
        super().__init__(settings, instance_id=instance_id)
        self.api_settings = settings
        self.app = create_app()

    async def on_start(self) -> None:
        await bootstrap_workspace(self.settings)
        self.app.state.ctx = ApiContext(self.api_settings, self.delivery("api"))


def _problems(exc: RequestValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        out.append(f"{loc or 'body'}: {err.get('msg')}")
    return out


_RUNTIME_ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (PublishedNotFound, 404),
    (PublishedDisabled, 409),
    (UnknownDatastore, 404),
    (ObjectNotFound, 404),
    (InvalidKey, 400),
    (DatastoreError, 400),
    # an event over the size limit is refused before anything is stored
    (EventTooLarge, 413),
)


def _status_handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handler


def create_app() -> FastAPI:
    """The FastAPI application; its state gets an ``ApiContext`` when the service starts."""
    app = FastAPI(
        title="headrace API",
        version="1",
        description="Submit and inspect pipeline runs; upload snapshots and datastore objects.",
    )
    app.include_router(router)
    app.include_router(endpoints.router)
    app.include_router(compute.router)
    app.include_router(datastores.router)
    app.include_router(datasets.router)
    app.include_router(environments.router)
    app.include_router(schedules.router)
    app.include_router(drafts.router)
    app.include_router(models.router)

    @app.exception_handler(TokenRefused)
    async def _refused(_: Request, exc: TokenRefused) -> JSONResponse:
        if isinstance(exc, ScopeRefused):
            return JSONResponse({"detail": str(exc)}, status_code=403)
        return JSONResponse(
            {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    # Errors of the shared runtime, raised below the routes: their messages say what to fix
    # and hold no credential (storage errors are built from names, keys and redacted causes).
    for error, status in _RUNTIME_ERROR_STATUS:
        app.add_exception_handler(error, _status_handler(status))

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        detail: Any = {"problems": exc.problems} if isinstance(exc, Invalid) else str(exc)
        return JSONResponse({"detail": detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": {"problems": _problems(exc)}}, status_code=422)

    return app
