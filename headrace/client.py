"""The SDK's HTTP client: one place that turns API errors into SDK exceptions."""

from __future__ import annotations

from typing import Any

import httpx

from headrace.errors import ApiError, NotFoundError, PipelineValidationError

__all__ = ["ApiClient"]


class ApiClient:
    """A thin synchronous client of the headrace API."""

    def __init__(self, base_url: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/api/v1", timeout=120, transport=transport
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
        if response.status_code == 404:
            raise NotFoundError(404, str(detail))
        raise ApiError(response.status_code, str(detail))

    def get(self, path: str, **params: Any) -> Any:
        query = {k: v for k, v in params.items() if v is not None}
        return self._check(self._http.get(path, params=query)).json()

    def get_bytes(self, path: str) -> bytes:
        return self._check(self._http.get(path)).content

    def post(self, path: str, body: Any) -> Any:
        return self._check(self._http.post(path, json=body)).json()

    def put_bytes(self, path: str, data: bytes, **params: Any) -> Any:
        return self._check(self._http.put(path, content=data, params=params)).json()
