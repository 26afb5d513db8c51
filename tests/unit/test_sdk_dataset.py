"""The SDK's datasets and datastore registration, shaped against a mock API.

Laziness is the point of several tests: building a dataset must send nothing, so a pipeline
script can describe large inputs without touching them.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from headrace import Dataset, Datastore
from headrace.client import ApiClient
from headrace.dataset import DatasetConsumptionConfig, DatasetError, FileDataset, TabularDataset
from headrace.workspace import Workspace

SECRET = "s3cr3t-value-never-echoed"


class FakeApi:
    """Records every request; answers datastore GETs, registrations and object reads."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.objects = {"data/a.csv": b"x,y\n1,2\n", "data/b.csv": b"x,y\n3,4\n"}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/api/v1")
        if request.method == "GET" and path == "/datastores/store":
            return httpx.Response(200, json=self._view("store"))
        if request.method == "POST" and path == "/datastores":
            body = json.loads(request.content)
            public = {
                k: ("***" if "secret" in k or "key" in k else v) for k, v in body["config"].items()
            }
            return httpx.Response(201, json={**self._view(body["name"]), "config": public})
        if request.method == "POST" and path == "/datasets":
            body = json.loads(request.content)
            identity = [
                {"datastore": "store", "path": k, "size": len(v), "etag": "e"}
                for k, v in self.objects.items()
            ]
            return httpx.Response(
                201,
                json={
                    "id": "00000000-0000-0000-0000-000000000001",
                    "name": body["name"],
                    "version": 3,
                    "kind": body["kind"],
                    "description": body["description"],
                    "definition": {"paths": body["paths"], "options": body["options"]},
                    "identity": identity,
                },
            )
        if request.method == "GET" and path == "/datastores/store/objects":
            prefix = request.url.params["prefix"]
            return httpx.Response(
                200,
                json=[
                    {"path": k, "size": len(v)}
                    for k, v in self.objects.items()
                    if k.startswith(prefix + "/")
                ],
            )
        if request.method == "GET" and path.startswith("/datastores/store/objects/"):
            key = path.removeprefix("/datastores/store/objects/")
            if key in self.objects:
                return httpx.Response(200, content=self.objects[key])
            return httpx.Response(404, json={"detail": f"no object {key!r}"})
        return httpx.Response(404, json={"detail": f"unexpected {request.method} {path}"})

    @staticmethod
    def _view(name: str) -> dict[str, Any]:
        return {"name": name, "kind": "s3", "is_default": False, "config": {"bucket": "b"}}


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def ws(api: FakeApi) -> Workspace:
    client = ApiClient("http://api", transport=httpx.MockTransport(api))
    return Workspace("t", "http://api", client=client)


def test_building_datasets_sends_nothing(ws: Workspace, api: FakeApi) -> None:
    """Building datasets and input configs sends no request; reading one sends a listing and a
    GET per path."""
    store = Datastore(ws, "store")
    before = len(api.requests)
    tab = Dataset.Tabular.from_delimited_files(path=[(store, "data/a.csv"), (store, "/data/b.csv")])
    files = Dataset.File.from_files(path=(store, "data/"))
    by_name = Dataset.File.from_files(("store", "data"))
    cfg = files.as_named_input("raw").as_mount()
    assert isinstance(tab, TabularDataset)
    assert isinstance(files, FileDataset)
    assert (tab.name, tab.version, tab.id) == (None, None, None)
    assert tab.definition == {
        "paths": [
            {"datastore": "store", "path": "data/a.csv"},
            {"datastore": "store", "path": "data/b.csv"},
        ],
        "options": {"separator": ",", "header": True, "encoding": "utf-8"},
    }
    assert files.definition["paths"] == [{"datastore": "store", "path": "data"}]
    assert by_name.definition == files.definition
    assert cfg.mode == "mount"
    assert len(api.requests) == before  # nothing was sent
    assert tab.to_pandas_dataframe()["x"].tolist() == [1, 3]
    # Only when asked: per path one listing (is it a prefix?) and one GET of the object.
    assert len(api.requests) == before + 4


def test_reading_needs_a_workspace(ws: Workspace) -> None:
    """An unregistered file dataset named by datastore name cannot be read (register it first);
    once registered it lists its files."""
    files = Dataset.File.from_files([("store", "data")])
    with pytest.raises(DatasetError, match="register it first"):
        files.to_path()
    reg = files.register(ws, "f")
    assert reg.to_path() == ["/a.csv", "/b.csv"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ([], "path is empty"),
        ([("store",)], "is not a \\(datastore"),
        ((3, "a"), "is not a \\(datastore"),
        (("store", "../x"), "without '..'"),
        (("store", ""), "must name an object"),
        ([("store", "a\\b")], "backslashes"),
        ([(None, "a")], "neither a Datastore nor"),
        ("https://example.org/Titanic.csv", "is an http\\(s\\) URL: .* upload it to a datastore"),
        ("titanic/Titanic.csv", "is a plain string: give \\(datastore"),
    ],
)
def test_bad_path_arguments(path: Any, message: str) -> None:
    """Empty, malformed, escaping, empty-key or backslashed paths, a web URL and a bare string
    are refused, saying which and what to give instead."""
    with pytest.raises(DatasetError, match=message):
        Dataset.File.from_files(path)


def test_separator_must_be_one_character() -> None:
    """A tabular separator of more than one character is refused."""
    with pytest.raises(DatasetError, match="one character"):
        Dataset.Tabular.from_delimited_files(("s", "a.csv"), separator=";;")


def test_register_shapes_the_request(ws: Workspace, api: FakeApi) -> None:
    """Register sends name, kind, paths, options, description and create_new_version, and returns
    the registered dataset."""
    tab = Dataset.Tabular.from_delimited_files(("store", "data"), separator="\t", header=False)
    reg = tab.register(ws, "iris", description="flowers", create_new_version=True)
    sent = json.loads(api.requests[-1].content)
    assert sent == {
        "name": "iris",
        "kind": "tabular",
        "paths": [{"datastore": "store", "path": "data"}],
        "options": {"separator": "\t", "header": False, "encoding": "utf-8"},
        "description": "flowers",
        "create_new_version": True,
    }
    assert isinstance(reg, TabularDataset)
    assert (reg.name, reg.version, reg.description) == ("iris", 3, "flowers")
    assert reg.id == "00000000-0000-0000-0000-000000000001"
    assert "iris" in repr(reg)


def test_named_input_spec(ws: Workspace) -> None:
    """A named input is direct until as_mount/as_download makes a new config; its spec is JSON
    naming the dataset's version and id; a bad input name is refused."""
    files = Dataset.File.from_files(("store", "data")).register(ws, "images")
    direct = files.as_named_input("images_in")
    assert isinstance(direct, DatasetConsumptionConfig)
    assert (direct.name, direct.dataset, direct.mode) == ("images_in", files, "direct")
    mount = direct.as_mount(path_on_compute="/mnt/images")
    assert direct.mode == "direct"  # a new config; the first is unchanged
    spec = mount.to_spec()
    assert spec == {
        "input_name": "images_in",
        "dataset_name": "images",
        "dataset_version": 3,
        "dataset_id": "00000000-0000-0000-0000-000000000001",
        "kind": "file",
        "mode": "mount",
        "path_on_compute": "/mnt/images",
        "definition": {"paths": [{"datastore": "store", "path": "data"}], "options": {}},
    }
    assert json.loads(json.dumps(spec)) == spec
    assert files.as_named_input("x").as_download().to_spec()["mode"] == "download"
    with pytest.raises(DatasetError, match="input name"):
        files.as_named_input("bad name")


def test_tabular_inputs_are_direct_only() -> None:
    """A tabular dataset is a direct input only; mounting it is refused (file datasets only)."""
    tab = Dataset.Tabular.from_delimited_files(("store", "a.csv"))
    assert tab.as_named_input("t").to_spec()["dataset_name"] is None
    with pytest.raises(DatasetError, match="file datasets"):
        tab.as_named_input("t").as_mount()


def test_malformed_csv_names_datastore_and_path(ws: Workspace, api: FakeApi) -> None:
    """Reading a malformed CSV fails naming the path and the datastore."""
    api.objects["data/bad.csv"] = b"a,b\n1,2\n1,2,3,4\n"
    tab = Dataset.Tabular.from_delimited_files((Datastore(ws, "store"), "data/bad.csv"))
    with pytest.raises(DatasetError, match=r"'data/bad\.csv' on datastore 'store'"):
        tab.to_pandas_dataframe()


def test_register_datastores_sends_config_and_keeps_no_secret(ws: Workspace, api: FakeApi) -> None:
    """Registering S3, Azure, GCS and local datastores sends the expected config; the returned
    S3 datastore keeps no secret."""
    s3 = Datastore.register_s3_bucket(
        ws,
        "bucket",
        bucket_name="b",
        endpoint="http://127.0.0.1:8333",
        access_key_id="AK",
        secret_access_key=SECRET,
    )
    sent = json.loads(api.requests[-1].content)
    assert sent["kind"] == "s3"
    assert sent["overwrite"] is False
    assert sent["config"] == {
        "bucket": "b",
        "endpoint": "http://127.0.0.1:8333",
        "region": "us-east-1",
        "access_key_id": "AK",
        "secret_access_key": SECRET,
    }
    assert SECRET not in repr(vars(s3))
    Datastore.register_azure_blob_container(
        ws, "az", "container", "account", account_key="a2V5", endpoint="core.windows.net"
    )
    sent = json.loads(api.requests[-1].content)
    assert sent["config"] == {
        "account_name": "account",
        "container": "container",
        "account_key": "a2V5",
        "endpoint": "https://account.blob.core.windows.net",
    }
    Datastore.register_gcs(ws, "g", "bucket", service_account_key={"type": "service_account"})
    sent = json.loads(api.requests[-1].content)
    assert sent["kind"] == "gcs"
    assert json.loads(sent["config"]["service_account_key"]) == {"type": "service_account"}
    Datastore.register_local(ws, "l", "/srv/data", overwrite=True)
    sent = json.loads(api.requests[-1].content)
    assert sent == {
        "name": "l",
        "kind": "local",
        "config": {"root": "/srv/data"},
        "overwrite": True,
    }
