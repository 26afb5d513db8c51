"""Datasets through the API on a real stack, on a local directory and on SeaweedFS (S3).

A version stands for one content: registering after an object changed gives the next version
with another identity; asking for what does not exist answers with the status and a message
that names it; concurrent registrations never share a version number.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Stack
from tests.servers import SeaweedServer, seaweedfs

pytestmark = pytest.mark.xdist_group("objectstores")
SERVER_FIXTURES = (seaweedfs,)

DATASETS = "/api/v1/datasets"
KINDS = ["local", "s3"]


async def _datastore(stack: Stack, kind: str, request: pytest.FixtureRequest, tmp: Path) -> str:
    """A datastore of ``kind`` registered on the stack; returns its name."""
    if kind == "local":
        config: dict[str, Any] = {"root": str(stack.settings.home / "datastores" / "ds")}
    else:
        s3: SeaweedServer = request.getfixturevalue("seaweedfs")
        config = dict(s3.datastore_config(f"dsets-{uuid.uuid4().hex[:10]}"))
    r = await stack.client.post(
        "/api/v1/datastores", json={"name": f"data-{kind}", "kind": kind, "config": config}
    )
    assert r.status_code == 201, r.text
    return f"data-{kind}"


async def _put(stack: Stack, ds: str, key: str, data: bytes) -> None:
    r = await stack.client.put(
        f"/api/v1/datastores/{ds}/objects/{key}", params={"overwrite": "true"}, content=data
    )
    assert r.status_code == 201, r.text


def _body(name: str, kind: str, paths: list[tuple[str, str]], **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "paths": [{"datastore": d, "path": p} for d, p in paths],
        **kw,
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_tabular_versions_follow_content(
    stack: Stack, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Same content gives back version 1; changed content is a 409 without create_new_version,
    else version 2 with another identity; latest, a named version and listings agree."""
    ds = await _datastore(stack, kind, request, tmp_path)
    await _put(stack, ds, "iris/a.csv", b"x,y\n1,2\n")
    await _put(stack, ds, "iris/b.csv", b"x,y\n3,4\n")
    body = _body("iris", "tabular", [(ds, "iris/a.csv"), (ds, "iris/b.csv")], description="d1")
    v1 = await stack.client.post(DATASETS, json=body)
    assert v1.status_code == 201, v1.text
    one = v1.json()
    assert (one["name"], one["version"], one["kind"], one["description"]) == (
        "iris",
        1,
        "tabular",
        "d1",
    )
    assert one["definition"]["options"] == {"separator": ",", "header": True, "encoding": "utf-8"}
    assert [(o["datastore"], o["path"], o["size"]) for o in one["identity"]] == [
        (ds, "iris/a.csv", 8),
        (ds, "iris/b.csv", 8),
    ]
    assert all(o["etag"] for o in one["identity"])

    # Same definition and content, no new version asked: the existing version comes back.
    same = await stack.client.post(DATASETS, json={**body, "create_new_version": False})
    assert same.status_code == 200, same.text
    assert same.json()["version"] == 1
    assert same.json()["id"] == one["id"]

    await _put(stack, ds, "iris/a.csv", b"x,y\n1,2\n5,6\n")
    changed = await stack.client.post(DATASETS, json={**body, "create_new_version": False})
    assert changed.status_code == 409
    assert "create_new_version" in changed.json()["detail"]
    v2 = await stack.client.post(DATASETS, json=body)
    assert v2.status_code == 201, v2.text
    two = v2.json()
    assert two["version"] == 2
    assert two["identity"] != one["identity"]
    assert two["identity"][0]["size"] == 12

    latest = (await stack.client.get(f"{DATASETS}/iris")).json()
    assert latest["version"] == 2
    assert (await stack.client.get(f"{DATASETS}/iris?version=latest")).json() == latest
    first = (await stack.client.get(f"{DATASETS}/iris", params={"version": 1})).json()
    assert first["identity"] == one["identity"]
    versions = (await stack.client.get(f"{DATASETS}/iris/versions")).json()
    assert [v["version"] for v in versions] == [1, 2]
    listed = (await stack.client.get(DATASETS)).json()
    assert [(d["name"], d["version"]) for d in listed] == [("iris", 2)]
    assert (await stack.client.get(f"{DATASETS}/iris/lineage")).json() == []


@pytest.mark.parametrize("kind", KINDS)
async def test_file_dataset_of_a_prefix(
    stack: Stack, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A file dataset of a prefix holds every object under it, not a sibling's; a new object
    makes version 2; tabular options on a file dataset are a 400."""
    ds = await _datastore(stack, kind, request, tmp_path)
    await _put(stack, ds, "images/a.png", b"aa")
    await _put(stack, ds, "images/sub/b.png", b"bbb")
    await _put(stack, ds, "imagesx/not-included.png", b"c")
    r = await stack.client.post(DATASETS, json=_body("imgs", "file", [(ds, "images/")]))
    assert r.status_code == 201, r.text
    view = r.json()
    assert [o["path"] for o in view["identity"]] == ["images/a.png", "images/sub/b.png"]
    assert (view["objects"], view["bytes"]) == (2, 5)
    assert view["definition"] == {"paths": [{"datastore": ds, "path": "images"}], "options": {}}
    await _put(stack, ds, "images/sub/c.png", b"new")
    v2 = (await stack.client.post(DATASETS, json=_body("imgs", "file", [(ds, "images")]))).json()
    assert v2["version"] == 2
    assert v2["objects"] == 3
    opts = await stack.client.post(
        DATASETS, json=_body("imgs2", "file", [(ds, "images")], options={"header": True})
    )
    assert opts.status_code == 400
    assert "options" in opts.json()["detail"]


async def test_errors_name_what_is_wrong(
    stack: Stack, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Unknown datastore, missing or escaping path, bad name or separator, unknown dataset or
    version: each a 404 or 400 whose message names what is wrong."""
    ds = await _datastore(stack, "local", request, tmp_path)
    await _put(stack, ds, "t/a.csv", b"x\n1\n")
    unknown_ds = await stack.client.post(DATASETS, json=_body("e", "file", [("nope", "t")]))
    assert unknown_ds.status_code == 404
    assert "'nope'" in unknown_ds.json()["detail"]
    missing = await stack.client.post(DATASETS, json=_body("e", "file", [(ds, "t/none.csv")]))
    assert missing.status_code == 404
    assert "'t/none.csv'" in missing.json()["detail"]
    assert repr(ds) in missing.json()["detail"]
    for bad in ("../outside", "t/../../x", "/etc/passwd"):
        escape = await stack.client.post(DATASETS, json=_body("e", "file", [(ds, bad)]))
        assert escape.status_code == 400, (bad, escape.text)
        assert "escapes" in escape.json()["detail"]
    bad_name = await stack.client.post(DATASETS, json=_body("a b", "file", [(ds, "t")]))
    assert bad_name.status_code == 400
    assert "field 'name'" in bad_name.json()["detail"]
    bad_sep = await stack.client.post(
        DATASETS, json=_body("e", "tabular", [(ds, "t/a.csv")], options={"separator": ";;"})
    )
    assert bad_sep.status_code == 400
    assert "options.separator" in bad_sep.json()["detail"]
    assert (await stack.client.get(f"{DATASETS}/e")).status_code == 404
    assert "no dataset 'e'" in (await stack.client.get(f"{DATASETS}/e")).json()["detail"]
    assert (await stack.client.get(f"{DATASETS}/e/versions")).status_code == 404
    assert (await stack.client.get(f"{DATASETS}/e/lineage")).status_code == 404
    ok = await stack.client.post(DATASETS, json=_body("t", "tabular", [(ds, "t/a.csv")]))
    assert ok.status_code == 201
    no_version = await stack.client.get(f"{DATASETS}/t", params={"version": 7})
    assert no_version.status_code == 404
    assert "no version 7" in no_version.json()["detail"]
    huge = await stack.client.get(f"{DATASETS}/t", params={"version": 10**12})
    assert huge.status_code == 404
    bad_version = await stack.client.get(f"{DATASETS}/t", params={"version": "first"})
    assert bad_version.status_code == 400


async def test_concurrent_registrations_get_distinct_versions(
    stack: Stack, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Eight concurrent registrations of one dataset get versions 1 to 8 and eight distinct ids."""
    ds = await _datastore(stack, "local", request, tmp_path)
    await _put(stack, ds, "c/a.txt", b"a")
    body = _body("conc", "file", [(ds, "c")], create_new_version=True)
    results = await asyncio.gather(*(stack.client.post(DATASETS, json=body) for _ in range(8)))
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    assert sorted(r.json()["version"] for r in results) == list(range(1, 9))
    assert len({r.json()["id"] for r in results}) == 8


async def test_lineage_lists_recorded_rows(
    stack: Stack, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The pipeline code will write lineage; the route reads whatever is there."""
    import asyncpg

    ds = await _datastore(stack, "local", request, tmp_path)
    await _put(stack, ds, "l/a.txt", b"a")
    assert (await stack.client.post(DATASETS, json=_body("lin", "file", [(ds, "l")]))).is_success
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        await conn.execute(
            "INSERT INTO dataset_lineage (run_id, step, dataset_name, dataset_version,"
            " input_name) VALUES ('r1', 'train', 'lin', 1, 'images')"
        )
    finally:
        await conn.close()
    rows = (await stack.client.get(f"{DATASETS}/lin/lineage")).json()
    assert [(r["run_id"], r["step"], r["dataset_version"], r["input_name"]) for r in rows] == [
        ("r1", "train", 1, "images")
    ]


# --------------------------------------------------------------------------- the SDK


@pytest.mark.parametrize("kind", KINDS)
async def test_sdk_tabular_and_file_datasets(
    stack: Stack, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Through the SDK tabular datasets read, register and version by content (a changed version
    refuses to read; a bad CSV names datastore and path); file datasets list and download."""
    from headrace import Dataset, Datastore
    from headrace.dataset import DatasetError, FileDataset, TabularDataset
    from headrace.errors import ApiError, NotFoundError
    from tests.integration.test_datastores_api import sdk_workspace

    name = await _datastore(stack, kind, request, tmp_path)
    ws = sdk_workspace(stack)
    src = tmp_path / "src"
    (src / "parts").mkdir(parents=True)
    (src / "parts" / "a.csv").write_text("x;y\n1;2\n")
    (src / "parts" / "b.csv").write_text("x;y\n3;4\n")
    (src / "bad.csv").write_text('x;y\n1;2\n3;4;5;6\n"unterminated\n')

    def use_sdk() -> None:
        store = Datastore(ws, name)
        store.upload(src, target_path="t", show_progress=False)
        tab = Dataset.Tabular.from_delimited_files(path=(store, "t/parts/"), separator=";")
        df = tab.to_pandas_dataframe()  # unregistered: reads what is there now
        assert df.to_dict("list") == {"x": [1, 3], "y": [2, 4]}
        reg = tab.register(ws, "parts", description="two parts")
        assert isinstance(reg, TabularDataset)
        assert (reg.name, reg.version, reg.description) == ("parts", 1, "two parts")
        assert reg.id
        assert reg.to_pandas_dataframe().shape == (2, 2)
        assert tab.register(ws, "parts").version == 1  # same content: the same version
        store.upload_files(
            [src / "parts" / "a.csv"], target_path="t/parts", overwrite=True, show_progress=False
        )
        (src / "parts" / "a.csv").write_text("x;y\n1;2\n7;8\n")
        store.upload_files(
            [src / "parts" / "a.csv"], target_path="t/parts", overwrite=True, show_progress=False
        )
        with pytest.raises(ApiError, match="create_new_version"):
            tab.register(ws, "parts")
        with pytest.raises(DatasetError, match="changed since version 1"):
            reg.to_pandas_dataframe()
        v2 = tab.register(ws, "parts", create_new_version=True)
        assert v2.version == 2
        assert v2.to_pandas_dataframe()["x"].tolist() == [1, 7, 3]
        assert Dataset.get_by_name(ws, "parts").version == 2
        old = Dataset.get_by_name(ws, "parts", version=1)
        assert old.version == 1
        assert old.identity != v2.identity
        with pytest.raises(NotFoundError, match="no version 9"):
            Dataset.get_by_name(ws, "parts", version=9)
        with pytest.raises(NotFoundError, match="no dataset 'nope'"):
            Dataset.get_by_name(ws, "nope")

        bad = Dataset.Tabular.from_delimited_files([(store, "t/bad.csv")], separator=";")
        with pytest.raises(DatasetError) as err:
            bad.to_pandas_dataframe()
        assert "'t/bad.csv'" in str(err.value)
        assert repr(name) in str(err.value)

        files = Dataset.File.from_files(path=[(store, "t/parts"), (name, "t/bad.csv")])
        reg_files = files.register(ws, "files")
        assert isinstance(reg_files, FileDataset)
        assert reg_files.to_path() == ["/a.csv", "/b.csv", "/bad.csv"]
        got = reg_files.download(tmp_path / "dl")
        assert sorted(Path(p).relative_to(tmp_path / "dl").as_posix() for p in got) == [
            "a.csv",
            "b.csv",
            "bad.csv",
        ]
        assert (tmp_path / "dl" / "b.csv").read_text() == "x;y\n3;4\n"
        with pytest.raises(DatasetError, match="overwrite=True"):
            reg_files.download(tmp_path / "dl")
        assert len(reg_files.download(tmp_path / "dl", overwrite=True)) == 3
        fetched = Dataset.get_by_name(ws, "files")
        assert isinstance(fetched, FileDataset)
        spec = fetched.as_named_input("raw").as_download("/data").to_spec()
        assert spec["dataset_name"] == "files"
        assert spec["dataset_version"] == 1
        assert spec["mode"] == "download"

    await asyncio.to_thread(use_sdk)
