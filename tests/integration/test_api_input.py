"""No HTTP 500 from input, against the real stack (API, database, services).

What matters: strings with NUL, control characters or unpaired surrogates are refused with a
422 naming the field (path, query or body) instead of failing deep in PostgreSQL or the object
store; the token is checked before the body is read, so an unauthenticated client cannot make
the API parse (or buffer) anything; bodies are bounded while they stream, whatever
Content-Length says or omits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from contracts.spec import DEFAULT_DATASTORE
from tests.integration.conftest import Stack
from tests.integration.test_pipeline_runs import WRITE, chain

MB = 1024 * 1024


class Body:
    """A request body streamed in 1 MB chunks that counts how many the server pulled."""

    def __init__(self, megabytes: int) -> None:
        self.megabytes = megabytes
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = b"x" * MB
        for _ in range(self.megabytes):
            self.pulled += 1
            yield chunk


def _problems(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    return " ".join(r.json()["detail"]["problems"])


def _anonymous(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=stack.client._transport, base_url="http://api")


async def test_unauthenticated_100mb_body_is_refused_without_reading_it(stack: Stack) -> None:
    """A 100 MB body without a token gets 401 before the API pulls a single chunk, whether it
    is chunked or announces its length."""
    async with _anonymous(stack) as anon:
        for route in ("/api/v1/runs", f"/api/v1/blobs/sha256:{'0' * 64}"):
            body = Body(100)
            method = "POST" if route.endswith("runs") else "PUT"
            r = await anon.request(method, route, content=body)
            assert r.status_code == 401, r.text
            assert body.pulled == 0
        r = await anon.post(
            "/api/v1/runs", content=b"{broken", headers={"content-type": "application/json"}
        )
        assert r.status_code == 401  # not a 422 about the JSON: the token comes first


async def test_bodies_are_bounded_while_they_stream(stack: Stack) -> None:
    """An authenticated JSON body over the JSON limit, and a chunked upload over the upload
    limit, are refused with 413 after at most the limit's worth of chunks; an announced
    Content-Length over the limit is refused before any."""
    settings = stack.api.api_settings
    settings.max_json_bytes = 3 * MB
    settings.max_upload_bytes = 2 * MB
    body = Body(100)
    r = await stack.client.post(
        "/api/v1/runs", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 413, r.text
    assert "3145728 bytes" in r.json()["detail"]
    assert body.pulled <= 4
    upload = Body(100)
    r = await stack.client.put(f"/api/v1/blobs/sha256:{'0' * 64}", content=upload)
    assert r.status_code == 413, r.text
    assert upload.pulled <= 3
    announced = Body(100)
    r = await stack.client.put(
        f"/api/v1/datastores/{DEFAULT_DATASTORE}/objects/big.bin",
        content=announced,
        headers={"content-length": str(100 * MB)},
    )
    assert r.status_code == 413, r.text
    assert announced.pulled == 0


@pytest.mark.parametrize(
    ("method", "route", "field"),
    [
        ("GET", "/api/v1/runs/a%00b", "path parameter 'run_id'"),
        ("GET", "/api/v1/runs?experiment=x%00y", "query parameter 'experiment'"),
        ("GET", "/api/v1/datastores/a%01b", "path parameter 'name'"),
        ("PUT", f"/api/v1/datastores/{DEFAULT_DATASTORE}/objects/a%01b", "path parameter 'path'"),
        ("GET", f"/api/v1/datastores/{DEFAULT_DATASTORE}/objects?prefix=%0a", "'prefix'"),
        ("GET", "/api/v1/runs/r/steps/s%7f/logs/stdout", "path parameter 'step'"),
    ],
)
async def test_bad_characters_in_path_and_query_are_422_naming_the_parameter(
    stack: Stack, method: str, route: str, field: str
) -> None:
    """NUL and control characters in a path or query parameter are a 422 naming it, not a 500
    from PostgreSQL or the object store's key parser."""
    r = await stack.client.request(method, route, content=b"x" if method == "PUT" else None)
    assert field in _problems(r)


async def test_bad_characters_in_json_bodies_are_422_naming_the_field(stack: Stack) -> None:
    """NUL, an unpaired surrogate (valid JSON, invalid UTF-8) and a control character in a
    key are refused naming the field; tabs and newlines in free text are accepted."""
    snap = await stack.upload_snapshot({"write.py": WRITE})
    pipeline = chain(snap, 1)
    pipeline["steps"][0]["arguments"][0]["value"] = "x\x00y"
    r = await stack.submit(pipeline)
    assert "field 'pipeline.steps.0.arguments.0.value'" in _problems(r)
    assert "NUL" in _problems(r)
    raw = b'{"experiment": "it\\ud800", "pipeline": {"steps": []}, "properties": {"k\\u0001": "v"}}'
    r = await stack.client.post(
        "/api/v1/runs", content=raw, headers={"content-type": "application/json"}
    )
    problems = _problems(r)
    assert "field 'experiment'" in problems
    assert "unpaired surrogate" in problems
    assert "field 'properties'" in problems
    assert "control character" in problems
    r = await stack.client.post(
        "/api/v1/datastores",
        json={"name": "n\x00", "kind": "local", "config": {"root": "/x\x00"}},
    )
    assert "field 'name'" in _problems(r)
    assert "field 'config.root'" in _problems(r)
    ok: dict[str, Any] = chain(snap, 1)
    r = await stack.submit(ok, properties={"note": "line one\nline two\twith a tab"})
    assert r.status_code == 201, r.text


async def test_deeply_nested_json_is_422_not_500(stack: Stack) -> None:
    """JSON nested deeper than the parser recurses is a 422 about the body, not a 500."""
    raw = b"[" * 100_000 + b"]" * 100_000
    r = await stack.client.post(
        "/api/v1/runs", content=raw, headers={"content-type": "application/json"}
    )
    assert "nested" in _problems(r)
