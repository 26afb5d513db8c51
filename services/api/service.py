"""API wiring: the FastAPI app on top of the shared service runtime (pool, outbox, relay)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.api import datasets, datastores, endpoints, environments
from services.api.errors import ApiError, Invalid
from services.api.handlers import ApiContext, router
from services.api.settings import ApiSettings
from services.runtime.bootstrap import bootstrap_workspace
from services.runtime.catalog import PublishedDisabled, PublishedNotFound
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


def create_app() -> FastAPI:
    """The FastAPI application; its state gets an ``ApiContext`` when the service starts."""
    app = FastAPI(
        title="headrace API",
        version="1",
        description="Submit and inspect pipeline runs; upload snapshots and datastore objects.",
    )
    app.include_router(router)
    app.include_router(endpoints.router)
    app.include_router(datastores.router)
    app.include_router(datasets.router)
    app.include_router(environments.router)

    @app.exception_handler(TokenRefused)
    async def _refused(_: Request, exc: TokenRefused) -> JSONResponse:
        if isinstance(exc, ScopeRefused):
            return JSONResponse({"detail": str(exc)}, status_code=403)
        return JSONResponse(
            {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(PublishedNotFound)
    async def _not_published(_: Request, exc: PublishedNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(PublishedDisabled)
    async def _disabled(_: Request, exc: PublishedDisabled) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    # Storage errors name the datastore and key and never hold a credential (see
    # services.runtime.storage), so their text goes to the client as it is.
    @app.exception_handler(UnknownDatastore)
    @app.exception_handler(ObjectNotFound)
    async def _no_object(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(InvalidKey)
    @app.exception_handler(DatastoreError)
    async def _storage(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        detail: Any = {"problems": exc.problems} if isinstance(exc, Invalid) else str(exc)
        return JSONResponse({"detail": detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": {"problems": _problems(exc)}}, status_code=422)

    return app
