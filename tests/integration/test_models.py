"""The model registry against the real API and database: versions numbered per name (also
when registered concurrently, never reusing a deleted number), filters, tag and property
changes, files byte for byte, and bad registrations refused with nothing stored."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.integration.conftest import Stack

FILES = {"model/weights.bin": "0123456789" * 100, "model/config.json": '{"layers": 3}'}


async def register(stack: Stack, name: str = "mnist", **body: Any) -> dict[str, Any]:
    manifest = await stack.upload_snapshot(FILES)
    r = await stack.client.post(
        "/api/v1/models", json={"name": name, "manifest": manifest, "path": "model", **body}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_versions_count_up_per_name_and_a_deleted_number_is_not_reused(
    stack: Stack,
) -> None:
    """Ten concurrent registrations of one name get versions 1..10; another name starts at
    1; after deleting the newest, the next registration is 11, and 'latest' follows."""
    made = await asyncio.gather(*(register(stack) for _ in range(10)))
    assert sorted(m["version"] for m in made) == list(range(1, 11))
    assert (await register(stack, "other"))["version"] == 1
    r = await stack.client.delete("/api/v1/models/mnist/versions/10")
    assert r.status_code == 200, r.text
    assert (await stack.client.get("/api/v1/models/mnist/versions/10")).status_code == 404
    latest = (await stack.client.get("/api/v1/models/mnist/versions/latest")).json()
    assert latest["id"] == "mnist:9"
    assert (await register(stack))["id"] == "mnist:11"


async def test_files_come_back_byte_for_byte(stack: Stack) -> None:
    """The version lists its files with sizes, and each file reads back as registered."""
    model = await register(stack, description="digits", model_framework="ScikitLearn")
    view = (await stack.client.get(f"/api/v1/models/mnist/versions/{model['version']}")).json()
    assert view["files"] == [
        {"path": "model/config.json", "size": 13},
        {"path": "model/weights.bin", "size": 1000},
    ]
    assert (view["description"], view["model_framework"]) == ("digits", "ScikitLearn")
    for path, text in FILES.items():
        got = await stack.client.get(f"/api/v1/models/mnist/versions/1/files/{path}")
        assert got.status_code == 200
        assert got.text == text
    missing = await stack.client.get("/api/v1/models/mnist/versions/1/files/model/nope")
    assert missing.status_code == 404


async def test_list_filters_by_name_tags_properties_and_latest(stack: Stack) -> None:
    """tag=k=v matches that value, tag=k any value; property likewise; latest keeps each
    name's newest version; results are newest first."""
    await register(stack, tags={"stage": "dev"})
    await register(stack, tags={"stage": "prod"}, properties={"accuracy": "0.9"})
    await register(stack, "other", tags={"stage": "dev"})

    async def ids(**params: Any) -> list[str]:
        r = await stack.client.get("/api/v1/models", params=params)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()]

    assert await ids() == ["other:1", "mnist:2", "mnist:1"]
    assert await ids(tag="stage=dev") == ["other:1", "mnist:1"]
    assert await ids(tag="stage", name="mnist") == ["mnist:2", "mnist:1"]
    assert await ids(property="accuracy") == ["mnist:2"]
    assert await ids(latest="true") == ["other:1", "mnist:2"]
    assert await ids(tag="stage=qa") == []


async def test_tags_change_and_properties_only_grow(stack: Stack) -> None:
    """add_tags and remove_tags change the tags; a new property is added; changing a set
    property is refused and leaves the version as it was."""
    await register(stack, tags={"a": "1", "b": "2"}, properties={"trained_on": "gpu"})
    url = "/api/v1/models/mnist/versions/1"
    r = await stack.client.patch(url, json={"add_tags": {"c": "3"}, "remove_tags": ["a"]})
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == {"b": "2", "c": "3"}
    added = await stack.client.patch(url, json={"add_properties": {"epochs": "30"}})
    assert added.json()["properties"] == {"trained_on": "gpu", "epochs": "30"}
    clash = await stack.client.patch(url, json={"add_properties": {"trained_on": "cpu"}})
    assert clash.status_code == 400
    assert "trained_on" in clash.text
    assert (await stack.client.get(url)).json()["properties"]["trained_on"] == "gpu"
    typo = await stack.client.patch(url, json={"add_tag": {"x": "y"}})
    assert typo.status_code == 422


async def test_bad_registrations_are_refused_and_store_nothing(stack: Stack) -> None:
    """A manifest never uploaded, a bad name, an unregistered dataset and an unknown field are
    each refused with what is wrong; no version is created."""
    manifest = await stack.upload_snapshot(FILES)
    cases = [
        ({"name": "m", "manifest": "sha256:" + "0" * 64, "path": "m"}, "upload the files first"),
        ({"name": "../m", "manifest": manifest, "path": "m"}, "is not a model name"),
        (
            {
                "name": "m",
                "manifest": manifest,
                "path": "m",
                "datasets": [{"name": "nope", "version": 1}],
            },
            "dataset 'nope' version 1 is not registered",
        ),
        ({"name": "m", "manifest": manifest, "path": "m", "framework": "x"}, "framework"),
    ]
    for body, fragment in cases:
        r = await stack.client.post("/api/v1/models", json=body)
        assert r.status_code in (400, 422), r.text
        assert fragment in r.text
    assert (await stack.client.get("/api/v1/models")).json() == []
    assert (await stack.client.get("/api/v1/models/m/versions/latest")).status_code == 404
    assert (await stack.client.get("/api/v1/models/m/versions/x1")).status_code == 400
