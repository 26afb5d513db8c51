"""Pipeline drafts against the real API, broker and database: created, listed by tag,
updated, run from what they hold, published, deleted, and refused when they could not run."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Stack

ECHO = "import sys\nprint('word', sys.argv[1])\n"


async def echo_spec(stack: Stack, script: str = ECHO, default: str = "hello") -> dict[str, Any]:
    """A one-step pipeline printing its string parameter ``word``."""
    snap = await stack.upload_snapshot({"echo.py": script})
    return {
        "parameters": [{"name": "word", "default": default}],
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


async def make_draft(stack: Stack, **body: Any) -> dict[str, Any]:
    r = await stack.client.post(
        "/api/v1/drafts",
        json={
            "name": "TestPipelineDraft",
            "experiment_name": "drafts",
            "pipeline": await echo_spec(stack),
            **body,
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def stdout_of(stack: Stack, run_id: str) -> str:
    run = await stack.wait_run(run_id)
    assert run["status"] == "Completed", run
    out = await stack.client.get(f"/api/v1/runs/{run_id}/steps/echo/logs/stdout")
    return out.text.strip()


async def test_a_draft_runs_what_it_holds_and_records_the_run(stack: Stack) -> None:
    """submit_run runs the draft's pipeline with its parameter values in its experiment,
    marks the run as the draft's, and the draft remembers it as its last run."""
    draft = await make_draft(
        stack, pipeline_parameters={"word": "drafted"}, tags={"dev": "true"}, properties={"a": "b"}
    )
    r = await stack.client.post(f"/api/v1/drafts/{draft['id']}/runs", json={})
    assert r.status_code == 201, r.text
    run_id = r.json()["run_id"]
    assert r.json()["experiment"] == "drafts"
    assert await stdout_of(stack, run_id) == "word drafted"
    run = (await stack.client.get(f"/api/v1/runs/{run_id}")).json()
    assert run["experiment"] == "drafts"
    assert run["properties"]["pipeline_draft"] == draft["id"]
    assert run["tags"] == {"dev": "true"}
    again = (await stack.client.get(f"/api/v1/drafts/{draft['id']}")).json()
    assert again["last_submitted_pipeline_run_id"] == run_id


async def test_update_changes_only_what_is_given_and_the_next_run_uses_it(stack: Stack) -> None:
    """A PATCH with a new pipeline and name keeps the description, tags and parameters, and
    the next run runs the new pipeline."""
    draft = await make_draft(stack, description="first", tags={"dev": "true"})
    shout = "import sys\nprint('WORD', sys.argv[1].upper())\n"
    r = await stack.client.patch(
        f"/api/v1/drafts/{draft['id']}",
        json={"name": "UpdatedPipelineDraft", "pipeline": await echo_spec(stack, shout)},
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["name"] == "UpdatedPipelineDraft"
    assert updated["description"] == "first"
    assert updated["tags"] == {"dev": "true"}
    run_id = (await stack.client.post(f"/api/v1/drafts/{draft['id']}/runs", json={})).json()[
        "run_id"
    ]
    assert await stdout_of(stack, run_id) == "WORD HELLO"


async def test_list_filters_by_every_tag_given(stack: Stack) -> None:
    """GET /drafts?tag=k=v returns the drafts carrying all the tags given, and only them."""
    dev = await make_draft(stack, tags={"dev": "true", "team": "a"})
    await make_draft(stack, tags={"dev": "false"})
    found = (await stack.client.get("/api/v1/drafts", params={"tag": "dev=true"})).json()
    assert [d["id"] for d in found] == [dev["id"]]
    both = await stack.client.get("/api/v1/drafts", params=[("tag", "dev=true"), ("tag", "team=b")])
    assert both.json() == []
    assert len((await stack.client.get("/api/v1/drafts")).json()) == 2
    bad = await stack.client.get("/api/v1/drafts", params={"tag": "dev"})
    assert bad.status_code == 400
    assert "tag=key=value" in bad.text


async def test_publish_makes_a_published_pipeline_with_the_drafts_pipeline(stack: Stack) -> None:
    """The published pipeline takes the draft's name, description and continue_on_step_failure,
    and its endpoint runs the draft's pipeline."""
    draft = await make_draft(stack, description="nightly", continue_on_step_failure=True)
    r = await stack.client.post(f"/api/v1/drafts/{draft['id']}/publish", json={})
    assert r.status_code == 201, r.text
    pub = r.json()
    assert (pub["name"], pub["description"]) == ("TestPipelineDraft", "nightly")
    assert pub["continue_on_step_failure"] is True
    started = await stack.client.post(
        pub["endpoint"], json={"ExperimentName": "pub", "ParameterAssignments": {"word": "x"}}
    )
    assert started.status_code == 201, started.text
    assert await stdout_of(stack, started.json()["Id"]) == "word x"


async def test_bad_drafts_are_refused_and_nothing_is_stored(stack: Stack) -> None:
    """A missing snapshot, an unknown parameter or an unknown field is refused with what is
    wrong; an unknown id is a 404; a deleted draft is gone."""
    spec = await echo_spec(stack)
    spec["steps"][0]["snapshot"] = "sha256:" + "0" * 64
    missing = await stack.client.post(
        "/api/v1/drafts", json={"name": "d", "experiment_name": "e", "pipeline": spec}
    )
    assert missing.status_code == 422
    assert "upload the snapshot" in missing.text
    draft = await make_draft(stack)
    unknown = await stack.client.patch(
        f"/api/v1/drafts/{draft['id']}", json={"pipeline_parameters": {"nope": 1}}
    )
    assert unknown.status_code == 422
    assert "nope" in unknown.text
    typo = await stack.client.patch(f"/api/v1/drafts/{draft['id']}", json={"nmae": "x"})
    assert typo.status_code == 422
    assert "nmae" in typo.text
    kept = (await stack.client.get(f"/api/v1/drafts/{draft['id']}")).json()
    assert kept["pipeline_parameters"] == {}
    assert kept["name"] == "TestPipelineDraft"
    assert [d["id"] for d in (await stack.client.get("/api/v1/drafts")).json()] == [draft["id"]]
    assert (await stack.client.get("/api/v1/drafts/nope")).status_code == 404
    assert (await stack.client.delete(f"/api/v1/drafts/{draft['id']}")).status_code == 200
    assert (await stack.client.get(f"/api/v1/drafts/{draft['id']}")).status_code == 404
    assert (await stack.client.post(f"/api/v1/drafts/{draft['id']}/runs", json={})).status_code == (
        404
    )
