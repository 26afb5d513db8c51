"""Bearer-token authentication for every API route, with the scope each route needs.

Reads need ``read``; starting, cancelling and feeding runs (snapshots, blobs, datastore
uploads, environment and model registrations) need ``submit``; everything else that changes state
(publishing, endpoints, datastores, datasets, cache eviction) needs ``admin``. One table
here rather than a decorator per route, so the whole policy reads in one place.
"""

from __future__ import annotations

from fastapi import Request, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.runtime.tokens import Scope, TokenInfo, verify_token

__all__ = ["authenticate", "authorize", "needed_scope"]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `headrace tokens create NAME --scope read|submit|admin`.",
)

#: (method, route template) pairs that only need ``submit``
SUBMIT_ROUTES = frozenset(
    {
        ("POST", "/api/v1/runs"),
        ("POST", "/api/v1/runs/{run_id}/cancel"),
        ("POST", "/api/v1/blobs/missing"),
        ("PUT", "/api/v1/blobs/{digest}"),
        ("POST", "/api/v1/snapshots"),
        ("PUT", "/api/v1/datastores/{name}/objects/{path:path}"),
        ("POST", "/api/v1/pipelines/{pipeline_id}/runs"),
        ("POST", "/api/v1/endpoints/{endpoint}/runs"),
        ("POST", "/api/v1/PipelineRuns/PipelineEndpointSubmit/Id/{endpoint_id}"),
        ("POST", "/api/v1/PipelineRuns/PipelineEndpointSubmit/Id/{endpoint_id}/{version}"),
        ("POST", "/api/v1/PipelineRuns/PipelineEndpointSubmit/Name"),
        ("POST", "/api/v1/environments"),
        ("POST", "/api/v1/drafts/{draft_id}/runs"),
        ("POST", "/api/v1/models"),
    }
)
PUBLIC_ROUTES = frozenset({("GET", "/api/v1/healthz")})


def needed_scope(method: str, template: str) -> Scope | None:
    """The scope a request needs; None for the unauthenticated health check."""
    if (method, template) in PUBLIC_ROUTES:
        return None
    if method in ("GET", "HEAD"):
        return "read"
    return "submit" if (method, template) in SUBMIT_ROUTES else "admin"


async def authenticate(request: Request, template: str) -> TokenInfo | None:
    """Check the request's bearer token against the scope of route ``template``
    (``TokenRefused`` → 401/403) and remember the result for ``authorize``.

    Called by ``guard.GuardedRoute`` before the body is read, so that nothing of an
    unauthenticated request is buffered or parsed.
    """
    scope = needed_scope(request.method, template)
    info: TokenInfo | None = None
    if scope is not None:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        given = token.strip() if kind.lower() == "bearer" else None
        info = await verify_token(request.app.state.ctx.pool, given or None, scope)
    request.state.token = info
    request.state.authenticated = True
    return info


async def authorize(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Security(_bearer),
) -> TokenInfo | None:
    """The token ``authenticate`` accepted for this request; checks it here for a route that
    is not guarded. Declared on every router, so the OpenAPI document shows the scheme."""
    if getattr(request.state, "authenticated", False):
        token: TokenInfo | None = request.state.token
        return token
    route = request.scope.get("route")
    template = route.path if isinstance(route, APIRoute) else request.url.path
    return await authenticate(request, template)
