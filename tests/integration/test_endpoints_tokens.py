"""Versioned pipeline endpoints, API tokens, and published pipelines started by events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import httpx

from contracts.topics import Topics
from examples.external_client.run_via_kafka import start_and_follow
from services.runtime.tokens import create_token, revoke_token
from tests.helpers import eventually
from tests.integration.conftest import Stack
from tests.integration.kafka_tools import read_all

TAG = "import sys\nprint(sys.argv[1], sys.argv[2])\n"


async def publish_tagged(stack: Stack, tag: str) -> str:
    """Publish a one-step pipeline printing ``tag`` and its ``word`` parameter."""
    snap = await stack.upload_snapshot({"tag.py": TAG})
    spec = {
        "parameters": [{"name": "word", "default": "hello"}],
        "steps": [
            {
                "name": "tag",
                "script_name": "tag.py",
                "snapshot": snap,
                "allow_reuse": False,
                "arguments": [
                    {"kind": "literal", "value": tag},
                    {"kind": "parameter", "name": "word"},
                ],
            }
        ],
    }
    r = await stack.client.post("/api/v1/pipelines", json={"name": f"p-{tag}", "pipeline": spec})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def stdout_of(stack: Stack, run_id: str) -> str:
    run = await stack.wait_run(run_id)
    assert run["status"] == "Completed", run
    return (await stack.client.get(f"/api/v1/runs/{run_id}/steps/tag/logs/stdout")).text.strip()


async def run_count(stack: Stack) -> int:
    return len((await stack.client.get("/api/v1/runs", params={"limit": 500})).json())


async def test_endpoint_versions_and_default_switching(stack: Stack) -> None:
    """Versions from "0"; the same URL runs the default or a named version."""
    v0, v1 = await publish_tagged(stack, "v0"), await publish_tagged(stack, "v1")
    r = await stack.client.post(
        "/api/v1/endpoints", json={"name": "scorer", "description": "d", "pipeline_id": v0}
    )
    assert r.status_code == 201, r.text
    url = r.json()["endpoint"]
    assert r.json()["default_version"] == "0"
    added = await stack.client.post("/api/v1/endpoints/scorer/versions", json={"pipeline_id": v1})
    assert added.json()["added_version"] == "1"
    assert added.json()["default_version"] == "0"
    assert added.json()["endpoint"] == url

    async def run(body: dict[str, Any]) -> str:
        r = await stack.client.post(url, json={"ExperimentName": "ep", **body})
        assert r.status_code == 201, r.text
        return await stdout_of(stack, r.json()["Id"])

    assert await run({"ParameterAssignments": {"word": "a"}}) == "v0 a"
    assert await run({"PipelineVersion": "1"}) == "v1 hello"
    r = await stack.client.put("/api/v1/endpoints/scorer/default", json={"version": "1"})
    assert r.status_code == 200
    assert r.json()["default_version"] == "1"
    assert await run({}) == "v1 hello"
    assert (await stack.client.get("/api/v1/endpoints/scorer")).json()["endpoint"] == url

    before = await run_count(stack)
    unknown = await stack.client.post(url, json={"ExperimentName": "x", "PipelineVersion": "7"})
    assert unknown.status_code == 404
    assert "no version '7'" in unknown.json()["detail"]
    bad_default = await stack.client.put("/api/v1/endpoints/scorer/default", json={"version": "9"})
    assert bad_default.status_code == 404
    dup = await stack.client.post("/api/v1/endpoints", json={"name": "scorer", "pipeline_id": v0})
    assert dup.status_code == 409
    assert (await stack.client.post(f"/api/v1/pipelines/{v1}/disable")).status_code == 200
    disabled = await stack.client.post(url, json={"ExperimentName": "x"})
    assert disabled.status_code == 409
    assert "disabled" in disabled.json()["detail"]
    wrong = await stack.client.post(
        url, json={"ExperimentName": "x", "PipelineVersion": "0", "ParameterAssignments": {"w": 1}}
    )
    assert wrong.status_code == 422
    nobody = await stack.client.post("/api/v1/endpoints/nope/runs", json={"ExperimentName": "x"})
    assert nobody.status_code == 404
    assert await run_count(stack) == before


async def test_endpoint_rename_keeps_id_versions_and_url(stack: Stack) -> None:
    """``PUT /endpoints/{endpoint}/name`` (``set_name``): the name-based routes follow the new
    name, the id URL is unchanged; a taken name is a 409, a bad one a 422, nothing changed."""
    v0 = await publish_tagged(stack, "v0")
    for name in ("first", "other"):
        r = await stack.client.post(
            "/api/v1/endpoints", json={"name": name, "description": "", "pipeline_id": v0}
        )
        assert r.status_code == 201, r.text
    before = (await stack.client.get("/api/v1/endpoints/first")).json()

    renamed = await stack.client.put("/api/v1/endpoints/first/name", json={"name": "second"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "second"
    assert renamed.json()["id"] == before["id"]
    assert renamed.json()["endpoint"] == before["endpoint"]
    assert renamed.json()["versions"] == before["versions"]
    assert (await stack.client.get("/api/v1/endpoints/first")).status_code == 404
    assert (await stack.client.get("/api/v1/endpoints/second")).json()["id"] == before["id"]
    same = await stack.client.put("/api/v1/endpoints/second/name", json={"name": "second"})
    assert same.status_code == 200

    taken = await stack.client.put("/api/v1/endpoints/second/name", json={"name": "other"})
    assert taken.status_code == 409
    assert "'other'" in taken.json()["detail"]
    bad = await stack.client.put("/api/v1/endpoints/second/name", json={"name": "../x"})
    assert bad.status_code == 422
    extra = await stack.client.put(
        "/api/v1/endpoints/second/name", json={"name": "third", "nmae": "x"}
    )
    assert extra.status_code == 422
    missing = await stack.client.put("/api/v1/endpoints/nope/name", json={"name": "fourth"})
    assert missing.status_code == 404
    names = sorted(e["name"] for e in (await stack.client.get("/api/v1/endpoints")).json())
    assert names == ["other", "second"]


async def test_v1_endpoint_urls_by_id_version_and_name(stack: Stack) -> None:
    """The v1 URL forms v1 code derives from ``endpoint`` as text all run the right version:
    ``.../Id/{id}``, ``.../Id/{id}/{version}`` and ``.../Name?name=&pipelineVersion=``; a
    submit-scoped token may use them; contradicting or missing versions and names start
    nothing."""
    v0, v1 = await publish_tagged(stack, "v0"), await publish_tagged(stack, "v1")
    r = await stack.client.post(
        "/api/v1/endpoints", json={"name": "v1urls", "description": "", "pipeline_id": v0}
    )
    by_id = r.json()["endpoint"]
    assert by_id == f"/api/v1/PipelineRuns/PipelineEndpointSubmit/Id/{r.json()['id']}"
    await stack.client.post("/api/v1/endpoints/v1urls/versions", json={"pipeline_id": v1})
    by_name = by_id.split("Id", 1)[0] + "Name?name=v1urls"

    async def run(url: str, **body: Any) -> str:
        r = await stack.client.post(url, json={"ExperimentName": "ep", "RunSource": "SDK", **body})
        assert r.status_code == 201, r.text
        return await stdout_of(stack, r.json()["Id"])

    assert await run(by_id) == "v0 hello"
    assert await run(by_id + "/1", ParameterAssignments={"word": "x"}) == "v1 x"
    assert await run(by_id, PipelineVersion="1") == "v1 hello"
    assert await run(by_name) == "v0 hello"
    assert await run(by_name + "&pipelineVersion=1") == "v1 hello"
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        submitter, _ = await create_token(conn, "ci", ["submit"])
    finally:
        await conn.close()
    headers = {"Authorization": f"Bearer {submitter}"}
    sub = await stack.client.post(by_name, json={"ExperimentName": "ep"}, headers=headers)
    assert sub.status_code == 201, sub.text
    await stack.wait_run(sub.json()["Id"])

    before = await run_count(stack)
    both = await stack.client.post(
        by_id + "/0", json={"ExperimentName": "x", "PipelineVersion": "1"}
    )
    assert both.status_code == 422
    assert "name it in one place" in both.text
    assert (await stack.client.post(by_id + "/7", json={"ExperimentName": "x"})).status_code == 404
    nameless = await stack.client.post(
        "/api/v1/PipelineRuns/PipelineEndpointSubmit/Name", json={"ExperimentName": "x"}
    )
    assert nameless.status_code == 422
    unknown = await stack.client.post(
        "/api/v1/PipelineRuns/PipelineEndpointSubmit/Name?name=nope", json={"ExperimentName": "x"}
    )
    assert unknown.status_code == 404
    typo = await stack.client.post(by_name, json={"ExperimentName": "x", "PipelineVersio": "1"})
    assert typo.status_code == 422
    assert await run_count(stack) == before


async def test_tokens_scopes_and_revocation(stack: Stack) -> None:
    """401 without a valid token, 403 without the scope; tokens are stored hashed."""
    transport = httpx.ASGITransport(app=stack.api.app)

    def client(token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers)

    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        reader, reader_info = await create_token(conn, "reader", ["read"])
        submitter, _ = await create_token(conn, "ci", ["submit"])
        stored = await conn.fetch("SELECT token_hash FROM api_tokens")
        assert all(reader not in r["token_hash"] for r in stored)
        async with client(None) as anon, client("hr_nope") as bogus, client(reader) as ro:
            missing = await anon.get("/api/v1/runs")
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == "Bearer"
            assert "headrace tokens create" in missing.json()["detail"]
            assert (await bogus.get("/api/v1/runs")).status_code == 401
            assert (await anon.get("/api/v1/healthz")).status_code == 200
            assert (await ro.get("/api/v1/runs")).status_code == 200
            refused = await ro.post("/api/v1/runs", json={})
            assert refused.status_code == 403
            assert "needs 'submit'" in refused.json()["detail"]
            async with client(submitter) as sub:
                # submit may start runs but not publish
                r = await sub.post("/api/v1/pipelines", json={"name": "x", "run_id": "r"})
                assert r.status_code == 403
                assert (await sub.post("/api/v1/runs", json={})).status_code == 422
            assert await revoke_token(conn, reader_info.id)
            revoked = await ro.get("/api/v1/runs")
            assert revoked.status_code == 401
            assert "revoked" in revoked.json()["detail"]
        spec = stack.api.app.openapi()
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    finally:
        await conn.close()


async def test_published_pipeline_started_by_event(stack: Stack) -> None:
    """A RunRequested naming a published pipeline or an endpoint version runs it; the outcome is
    seen only through the public events."""
    v0, v1 = await publish_tagged(stack, "v0"), await publish_tagged(stack, "v1")
    await stack.client.post("/api/v1/endpoints", json={"name": "ev", "pipeline_id": v0})
    await stack.client.post("/api/v1/endpoints/ev/versions", json={"pipeline_id": v1})
    bootstrap, prefix = stack.settings.kafka_bootstrap, stack.settings.topic_prefix

    for target, params, expected in (
        ({"published_pipeline_id": v0}, {"word": "evt"}, "v0 evt"),
        ({"pipeline_endpoint": "ev", "pipeline_version": "1"}, {}, "v1 hello"),
    ):
        seen = await asyncio.wait_for(
            start_and_follow(bootstrap, target, params, prefix=prefix), timeout=60
        )
        types = [t for t, _ in seen]
        assert types[0] == "headrace.run.started.v1"
        assert types[-1] == "headrace.run.completed.v1"
        run_id = seen[0][1]["run_id"]
        assert await stdout_of(stack, run_id) == expected


async def test_bad_event_requests_are_dead_lettered_and_start_nothing(stack: Stack) -> None:
    """A RunRequested naming an unknown or a disabled published pipeline is dead-lettered with
    the reason; no run is created."""
    v0 = await publish_tagged(stack, "v0")
    await stack.client.post(f"/api/v1/pipelines/{v0}/disable")
    bootstrap, prefix = stack.settings.kafka_bootstrap, stack.settings.topic_prefix
    before = await run_count(stack)
    for target in ({"published_pipeline_id": "nope"}, {"published_pipeline_id": v0}):
        task = asyncio.create_task(start_and_follow(bootstrap, target, prefix=prefix))

        async def dead_lettered(t: dict[str, Any] = target) -> bool:
            records = await read_all(bootstrap, Topics(prefix).deadletter)
            return any(
                json.loads(v).get("published_pipeline_id") == t["published_pipeline_id"]
                for _, v, _ in records
            )

        await eventually(dead_lettered, timeout=30)
        task.cancel()
    records = await read_all(bootstrap, Topics(prefix).deadletter)
    reasons = [h["x-headrace-dlq-reason"].decode() for _, _, h in records]
    assert any("no published pipeline 'nope'" in r for r in reasons), reasons
    assert any("is disabled" in r for r in reasons), reasons
    assert await run_count(stack) == before
