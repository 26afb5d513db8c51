"""Published pipelines: publish, run with ParameterAssignments, disable/enable, bad input."""

from __future__ import annotations

from tests.integration.conftest import Stack

ECHO = "import sys\nprint('word', sys.argv[1])\n"


async def published(stack: Stack) -> tuple[str, str]:
    """Run a one-step parameterised pipeline and publish it from that run."""
    snap = await stack.upload_snapshot({"echo.py": ECHO})
    spec = {
        "parameters": [{"name": "word", "default": "hello"}],
        "steps": [
            {
                "name": "echo",
                "script_name": "echo.py",
                "snapshot": snap,
                "allow_reuse": False,
                "arguments": [{"kind": "parameter", "name": "word"}],
            }
        ],
    }
    rid = (await stack.submit(spec)).json()["run_id"]
    assert (await stack.wait_run(rid))["status"] == "Completed"
    r = await stack.client.post(
        "/api/v1/pipelines",
        json={"name": "My_Published_Pipeline", "description": "d", "version": "1.0", "run_id": rid},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], r.json()["endpoint"]


async def test_rest_submit_with_parameter_assignments(stack: Stack) -> None:
    """POSTing the seed's body to the endpoint starts a run using the assigned value."""
    pid, endpoint = await published(stack)
    assert endpoint == f"/api/v1/pipelines/{pid}/runs"
    r = await stack.client.post(
        endpoint, json={"ExperimentName": "My_Pipeline", "ParameterAssignments": {"word": "twenty"}}
    )
    assert r.status_code == 201, r.text
    run = await stack.wait_run(r.json()["Id"])
    assert run["status"] == "Completed"
    assert run["experiment"] == "My_Pipeline"
    out = await stack.client.get(f"/api/v1/runs/{run['run_id']}/steps/echo/logs/stdout")
    assert out.text.strip() == "word twenty"
    schema = (await stack.client.get(f"/api/v1/pipelines/{pid}/parameters")).json()
    assert schema["properties"] == {"word": {"type": "string", "default": "hello"}}


async def test_bad_requests_get_clear_statuses_and_start_nothing(stack: Stack) -> None:
    """Unknown ids 404; unknown or mistyped parameters and non-JSON bodies 422; no run."""
    _, endpoint = await published(stack)
    before = len((await stack.client.get("/api/v1/runs")).json())
    missing = await stack.client.post("/api/v1/pipelines/nope/runs", json={"ExperimentName": "x"})
    assert missing.status_code == 404
    for assignments, fragment in (
        ({"nope": 1}, "unknown pipeline parameter 'nope'"),
        ({"word": 3}, "must be str"),
    ):
        r = await stack.client.post(
            endpoint, json={"ExperimentName": "x", "ParameterAssignments": assignments}
        )
        assert r.status_code == 422
        assert fragment in str(r.json()["detail"]["problems"])
    r = await stack.client.post(
        endpoint, content=b"{oops", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert len((await stack.client.get("/api/v1/runs")).json()) == before


async def test_disabled_pipeline_refuses_runs_until_enabled(stack: Stack) -> None:
    """A disabled pipeline answers 409 saying how to enable it; enabled again, it runs."""
    pid, endpoint = await published(stack)
    assert (await stack.client.post(f"/api/v1/pipelines/{pid}/disable")).status_code == 200
    r = await stack.client.post(endpoint, json={"ExperimentName": "x"})
    assert r.status_code == 409
    assert "disabled" in r.json()["detail"]
    listed = (await stack.client.get("/api/v1/pipelines")).json()
    assert pid not in [p["id"] for p in listed]
    everything = (await stack.client.get("/api/v1/pipelines?active_only=false")).json()
    assert pid in [p["id"] for p in everything]
    assert (await stack.client.post(f"/api/v1/pipelines/{pid}/enable")).status_code == 200
    r = await stack.client.post(endpoint, json={"ExperimentName": "x"})
    assert r.status_code == 201
    assert (await stack.wait_run(r.json()["Id"]))["status"] == "Completed"


async def test_unknown_or_unsupported_body_fields_are_refused(stack: Stack) -> None:
    """A misspelt field is a 422 naming it and listing the accepted fields (it used to be
    ignored, running the defaults); DataPathAssignments, which need DataPath parameters
    headrace lacks, are a 422 saying what to use instead; empty ones, and the RunSource the
    v1 SDK sends, are accepted."""
    _, endpoint = await published(stack)
    before = len((await stack.client.get("/api/v1/runs")).json())
    typo = await stack.client.post(
        endpoint, json={"ExperimentName": "x", "ParameterAsignments": {"word": "w"}}
    )
    assert typo.status_code == 422
    problems = str(typo.json()["detail"]["problems"])
    assert "unknown field(s) ParameterAsignments" in problems
    assert "ExperimentName, ParameterAssignments, DataPathAssignments" in problems
    paths = await stack.client.post(
        endpoint,
        json={
            "ExperimentName": "x",
            "DataPathAssignments": {"input": {"DataStoreName": "d", "RelativePath": "p"}},
        },
    )
    assert paths.status_code == 422
    assert "string PipelineParameter" in str(paths.json()["detail"]["problems"])
    assert len((await stack.client.get("/api/v1/runs")).json()) == before
    ok = await stack.client.post(
        endpoint,
        json={
            "ExperimentName": "x",
            "DataPathAssignments": {},
            "ParameterAssignments": {},
            "RunSource": "SDK",
        },
    )
    assert ok.status_code == 201, ok.text
