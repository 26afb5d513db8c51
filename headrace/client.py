"""The SDK's HTTP client: one place that turns API errors into SDK exceptions."""

from __future__ import annotations

import json
from typing import Any

import httpx

from contracts.limits import MAX_EVENT_BYTES, too_large_reason
from headrace.errors import (
    ApiError,
    ApiUnavailableError,
    NotFoundError,
    NotSupportedError,
    PipelineValidationError,
    RequestTooLargeError,
)

__all__ = ["ApiClient", "check_request_size", "parameter_assignments"]


def parameter_assignments(values: dict[str, Any] | None) -> dict[str, Any]:
    """Pipeline parameter values as the API takes them: str, int, float or bool.

    Why check here: a ``Dataset`` or ``DataPath`` given as a value would otherwise fail as a
    JSON encoding error; v1 allows them, headrace does not yet, and the error should say so.
    """
    out = dict(values or {})
    for name, value in out.items():
        if not isinstance(value, str | int | float | bool):
            raise NotSupportedError(
                f"a {type(value).__name__} as the value of pipeline parameter {name!r}",
                "pass a str, int, float or bool; for data, give the step a dataset input "
                "(dataset.as_named_input(...)) or a DataReference instead of a parameter",
            )
    return out


def check_request_size(kind: str, body: dict[str, Any]) -> None:
    """Refuse, before sending, a request whose pipeline and parameters cannot fit in one event.

    The API checks the real event and answers 413; checking here first saves uploading a
    100 MB argument only to have it refused.
    """
    size = len(json.dumps({k: body.get(k) for k in ("pipeline", "parameters")}).encode())
    if size > MAX_EVENT_BYTES:
        raise RequestTooLargeError(413, too_large_reason(kind, size))


class ApiClient:
    """A thin synchronous client of the headrace API."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url + "/api/v1", timeout=120, transport=transport, headers=headers
        )

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if not response.is_error:
            return response
        try:
            detail: Any = response.json().get("detail")
        except ValueError:
            detail = response.text
        if isinstance(detail, dict) and "problems" in detail:
            raise PipelineValidationError(response.status_code, list(detail["problems"]))
        if response.status_code in (401, 403):
            raise ApiError(
                response.status_code,
                f"{detail} (the workspace config's 'token' is sent as the bearer token)",
            )
        if response.status_code == 404:
            raise NotFoundError(404, str(detail))
        if response.status_code == 413:
            raise RequestTooLargeError(413, str(detail))
        raise ApiError(response.status_code, str(detail))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a transport failure is an ``ApiUnavailableError``, not an httpx one."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnavailableError(
                f"cannot reach the headrace API at {self.base_url} "
                f"({type(exc).__name__}: {exc}); start the stack with `headrace up` (check "
                "it with `headrace status`), or fix api_url in the workspace config"
            ) from exc
        return self._check(response)

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        return self._send("GET", path, params=query).json()

    def get_bytes(self, path: str) -> bytes:
        return self._send("GET", path).content

    def post(self, path: str, body: Any) -> Any:
        return self._send("POST", path, json=body).json()

    def patch(self, path: str, body: Any) -> Any:
        return self._send("PATCH", path, json=body).json()

    def delete(self, path: str) -> Any:
        return self._send("DELETE", path).json()

    def put_json(self, path: str, body: Any) -> Any:
        return self._send("PUT", path, json=body).json()

    def put_bytes(self, path: str, data: bytes, **params: Any) -> Any:
        return self._send("PUT", path, content=data, params=params).json()
