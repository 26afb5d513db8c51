"""Registering datastores through the API, on real servers: SeaweedFS (S3), Azurite (Azure).

What matters: a bad registration is refused before it is recorded, with the field or the
store's answer in the message; credentials go in and never come out, not in a view, not in an
error; objects go in and out of remote kinds through the API as they do for a directory.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import Stack
from tests.servers import AzuriteServer, SeaweedServer, azurite, seaweedfs

pytestmark = pytest.mark.xdist_group("objectstores")
# The servers' session fixtures, imported so that pytest finds them in this module.
SERVER_FIXTURES = (seaweedfs, azurite)

DS = "/api/v1/datastores"


def _prefix() -> str:
    return f"api-{uuid.uuid4().hex[:10]}"


def _secrets(config: dict[str, Any]) -> list[str]:
    return [
        str(config[k])
        for k in ("secret_access_key", "account_key", "sas_token", "service_account_key")
        if k in config
    ]


async def _register(stack: Stack, name: str, kind: str, config: dict[str, Any], **kw: Any) -> Any:
    return await stack.client.post(
        DS, json={"name": name, "kind": kind, "config": config, **kw}, timeout=90
    )


def _local(stack: Stack, name: str) -> Path:
    """A root where local datastores may be registered (under the state directory's
    ``datastores/``, the default allowed root)."""
    return stack.settings.home / "datastores" / name


def _no_secret(response: httpx.Response, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in response.text


@pytest.fixture
def s3_config(seaweedfs: SeaweedServer) -> dict[str, Any]:
    return dict(seaweedfs.datastore_config(_prefix()))


@pytest.fixture
def azure_config(azurite: AzuriteServer) -> dict[str, Any]:
    return dict(azurite.datastore_config(_prefix()))


@pytest.mark.parametrize("kind", ["s3", "azure_blob"])
async def test_register_remote_kinds_and_views_hide_secrets(
    stack: Stack, kind: str, request: pytest.FixtureRequest
) -> None:
    """An S3 or Azure datastore registers (201); its view, the listing and the workspace never
    show a secret."""
    config = request.getfixturevalue("s3_config" if kind == "s3" else "azure_config")
    secrets = _secrets(config)
    assert secrets
    r = await _register(stack, f"remote-{kind}", kind, config)
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["name"] == f"remote-{kind}"
    assert view["kind"] == kind
    assert view["is_default"] is False
    key_field = "secret_access_key" if kind == "s3" else "account_key"
    assert view["config"][key_field] == "***"
    assert view["config"]["prefix"] == config["prefix"]
    _no_secret(r, secrets)
    listed = await stack.client.get(DS)
    assert listed.status_code == 200
    assert {d["name"] for d in listed.json()} >= {"workspaceblobstore", f"remote-{kind}"}
    _no_secret(listed, secrets)
    one = await stack.client.get(f"{DS}/remote-{kind}")
    assert one.json() == view
    _no_secret(one, secrets)
    # Nothing else in the API shows a datastore's config: the workspace names the default.
    ws = await stack.client.get("/api/v1/workspace")
    assert set(ws.json()) == {"name", "default_datastore", "api_version"}


async def test_register_local_kind_needs_an_absolute_root(stack: Stack, tmp_path: Path) -> None:
    """A local datastore's root is created by the server; a relative root is a 422 naming 'root'."""
    root = _local(stack, "local-store")
    r = await _register(stack, "mylocal", "local", {"root": str(root)})
    assert r.status_code == 201, r.text
    assert r.json()["config"] == {"root": str(root)}
    assert root.is_dir()  # created by the server
    rel = await _register(stack, "rel", "local", {"root": "relative/dir"})
    assert rel.status_code == 422
    assert "field 'root'" in rel.json()["detail"]
    assert "absolute" in rel.json()["detail"]


@pytest.mark.parametrize("kind", ["s3", "azure_blob"])
async def test_wrong_credentials_are_refused_before_recording(
    stack: Stack, kind: str, request: pytest.FixtureRequest
) -> None:
    """Wrong credentials are a 400 naming the datastore, not echoing the key; nothing recorded."""
    config = request.getfixturevalue("s3_config" if kind == "s3" else "azure_config")
    if kind == "s3":
        config["secret_access_key"] = "wrong-secret-" + uuid.uuid4().hex
        wrong = config["secret_access_key"]
    else:
        import base64

        wrong = base64.b64encode(uuid.uuid4().bytes * 4).decode()
        config["account_key"] = wrong
    r = await _register(stack, f"badcreds-{kind}", kind, config)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert f"badcreds-{kind}" in detail
    assert "credentials" in detail
    assert wrong not in r.text
    assert (await stack.client.get(f"{DS}/badcreds-{kind}")).status_code == 404


async def test_unreachable_endpoint_and_missing_bucket(
    stack: Stack, s3_config: dict[str, Any]
) -> None:
    """An unreachable endpoint and a missing bucket are each a 400 saying so, with no secret."""
    from tests.servers import free_port

    dead = {**s3_config, "endpoint": f"http://127.0.0.1:{free_port()}"}
    r = await _register(stack, "dead", "s3", dead)
    assert r.status_code == 400, r.text
    assert "unreachable" in r.json()["detail"]
    assert s3_config["secret_access_key"] not in r.text
    nobucket = {**s3_config, "bucket": "no-such-bucket-" + uuid.uuid4().hex[:8]}
    r = await _register(stack, "nobucket", "s3", nobucket)
    assert r.status_code == 400, r.text
    assert "nobucket" in r.json()["detail"]


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("s3", {"bucket": "abc", "secret_key": "x"}, "secret_key"),
        ("s3", {"bucket": "abc", "access_key_id": "a"}, "secret_access_key"),
        ("s3", {"bucket": "abc", "endpoint": "ftp://x"}, "endpoint"),
        (
            "azure_blob",
            {"account_name": "a", "container": "abc", "account_key": "%%"},
            "account_key",
        ),
        ("gcs", {"bucket": "abc", "service_account_key": "not json"}, "service_account_key"),
        ("gcs", {}, "bucket"),
        ("ftp", {}, "kind"),
        ("local", {}, "root"),
    ],
)
async def test_invalid_config_names_the_field(
    stack: Stack, kind: str, config: dict[str, Any], field: str
) -> None:
    """An invalid config or kind is a 422 naming the field, never echoing it; nothing recorded."""
    r = await _register(stack, "invalid", kind, config)
    assert r.status_code == 422, r.text
    assert f"field '{field}'" in r.json()["detail"]
    assert "not json" not in r.text
    assert (await stack.client.get(f"{DS}/invalid")).status_code == 404


async def test_bad_name_names_the_field(stack: Stack, tmp_path: Path) -> None:
    """Names with a space, a path, nothing or a leading dash are a 422 naming field 'name'."""
    for bad in ("my store", "../x", "", "-x"):
        r = await _register(stack, bad, "local", {"root": str(_local(stack, "any"))})
        assert r.status_code == 422, r.text
        assert "field 'name'" in r.json()["detail"]


async def test_gcs_config_is_validated_then_probed(stack: Stack) -> None:
    """A valid GCS config passes validation; with no GCS server here the probe fails with
    400 (unreachable), and the key never appears in the answer."""
    from tests.servers import free_port

    key = json.dumps({"type": "service_account", "private_key": "pk-" + uuid.uuid4().hex})
    r = await _register(
        stack,
        "gcs",
        "gcs",
        {
            "bucket": "abc",
            "service_account_key": key,
            "base_url": f"http://127.0.0.1:{free_port()}",
        },
    )
    assert r.status_code in (400, 422), r.text
    assert "gcs" in r.json()["detail"]
    assert "pk-" not in r.text


async def test_duplicate_name_is_409(stack: Stack, tmp_path: Path) -> None:
    """A taken name is a 409 saying to pick another; overwrite replaces it, but not the default."""
    assert (
        await _register(stack, "dup", "local", {"root": str(_local(stack, "a"))})
    ).status_code == 201
    again = await _register(stack, "dup", "local", {"root": str(_local(stack, "b"))})
    assert again.status_code == 409
    assert "pick another name" in again.json()["detail"]
    default = await _register(
        stack, "workspaceblobstore", "local", {"root": str(_local(stack, "c"))}, overwrite=True
    )
    assert default.status_code == 409
    replaced = await _register(
        stack, "dup", "local", {"root": str(_local(stack, "b"))}, overwrite=True
    )
    assert replaced.status_code == 201
    assert replaced.json()["config"]["root"] == str(_local(stack, "b"))


async def test_concurrent_registrations_of_one_name_one_wins(stack: Stack, tmp_path: Path) -> None:
    """Four concurrent registrations of one name: one 201, three 409."""
    results = await asyncio.gather(
        *(
            _register(stack, "race", "local", {"root": str(_local(stack, f"r{i}"))})
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409]


@pytest.mark.parametrize("kind", ["s3", "azure_blob"])
async def test_objects_round_trip_on_remote_kinds(
    stack: Stack, kind: str, request: pytest.FixtureRequest
) -> None:
    """Objects put, list and get back on S3 and Azure; a second put needs overwrite (409), a
    missing object is a 404, a key escaping the prefix a 400."""
    config = request.getfixturevalue("s3_config" if kind == "s3" else "azure_config")
    name = f"objects-{kind}"
    assert (await _register(stack, name, kind, config)).status_code == 201
    put = await stack.client.put(f"{DS}/{name}/objects/dir/a.txt", content=b"alpha")
    assert put.status_code == 201, put.text
    await stack.client.put(f"{DS}/{name}/objects/dir/sub/b.txt", content=b"beta!")
    again = await stack.client.put(f"{DS}/{name}/objects/dir/a.txt", content=b"x")
    assert again.status_code == 409
    over = await stack.client.put(f"{DS}/{name}/objects/dir/a.txt?overwrite=true", content=b"A")
    assert over.status_code == 201
    listing = await stack.client.get(f"{DS}/{name}/objects", params={"prefix": "dir"})
    assert listing.json() == [
        {"path": "dir/a.txt", "size": 1},
        {"path": "dir/sub/b.txt", "size": 5},
    ]
    got = await stack.client.get(f"{DS}/{name}/objects/dir/sub/b.txt")
    assert got.content == b"beta!"
    missing = await stack.client.get(f"{DS}/{name}/objects/dir/none.txt")
    assert missing.status_code == 404
    escape = await stack.client.put(f"{DS}/{name}/objects/a/%2E%2E/%2E%2E/x", content=b"x")
    assert escape.status_code == 400


async def test_set_default(stack: Stack, tmp_path: Path) -> None:
    """Setting a default moves is_default to it and the workspace names it; unknown is a 404."""
    assert (
        await _register(stack, "second", "local", {"root": str(_local(stack, "s"))})
    ).status_code == 201
    r = await stack.client.post(f"{DS}/second/default")
    assert r.status_code == 200, r.text
    assert r.json()["is_default"] is True
    views = {d["name"]: d["is_default"] for d in (await stack.client.get(DS)).json()}
    assert views == {"second": True, "workspaceblobstore": False}
    assert (await stack.client.get("/api/v1/workspace")).json()["default_datastore"] == "second"
    assert (await stack.client.post(f"{DS}/nope/default")).status_code == 404
    # Back, so the stack's teardown finds its default where it left it.
    assert (await stack.client.post(f"{DS}/workspaceblobstore/default")).status_code == 200
    third = await _register(
        stack, "third", "local", {"root": str(_local(stack, "t"))}, set_default=True
    )
    assert third.json()["is_default"] is True


async def test_registration_needs_admin(stack: Stack, tmp_path: Path) -> None:
    """A submit-only token cannot register or set the default (403) but can list datastores."""
    import asyncpg

    from services.runtime.tokens import create_token

    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        token, _ = await create_token(conn, "submitter", ["submit"])
    finally:
        await conn.close()
    headers = {"Authorization": f"Bearer {token}"}
    body = {"name": "x", "kind": "local", "config": {"root": str(_local(stack, "any"))}}
    r = await stack.client.post(DS, json=body, headers=headers)
    assert r.status_code == 403
    r = await stack.client.post(f"{DS}/workspaceblobstore/default", headers=headers)
    assert r.status_code == 403
    assert (await stack.client.get(DS, headers=headers)).status_code == 200


# --------------------------------------------------------------------------- the SDK


class _LoopBridge(httpx.BaseTransport):
    """A synchronous transport for the SDK that runs each request on the stack's event loop.

    Why: the SDK is synchronous (``httpx.Client``) and the in-process stack is served by the
    test's event loop. The SDK runs in a worker thread (``asyncio.to_thread``) and every
    request it makes is handed to the loop, so the SDK is tested against the real API, real
    database and real object stores, with no mock in between."""

    def __init__(self, stack: Stack, loop: asyncio.AbstractEventLoop) -> None:
        self.stack = stack
        self.loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        path = request.url.raw_path.decode()
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        call = self.stack.client.request(
            request.method, path, content=body, headers=headers, timeout=120
        )
        r = asyncio.run_coroutine_threadsafe(call, self.loop).result(timeout=180)
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)


def sdk_workspace(stack: Stack) -> Any:
    """A ``Workspace`` whose SDK calls reach ``stack`` (use it from a worker thread)."""
    from headrace.client import ApiClient
    from headrace.workspace import Workspace

    client = ApiClient("http://api", transport=_LoopBridge(stack, asyncio.get_running_loop()))
    return Workspace("it", "http://api", client=client)


@pytest.mark.parametrize("kind", ["s3", "azure_blob"])
async def test_sdk_register_upload_download_on_remote_kinds(
    stack: Stack, kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Through the SDK an S3 or Azure datastore registers without exposing a secret, uploads
    (overwrite only when asked), downloads, becomes the default, and refuses a taken name."""
    from headrace import Datastore
    from headrace.errors import ApiError

    config = request.getfixturevalue("s3_config" if kind == "s3" else "azure_config")
    ws = sdk_workspace(stack)
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha")
    (src / "sub" / "b.txt").write_text("beta")

    def use_sdk() -> None:
        if kind == "s3":
            store = Datastore.register_s3_bucket(
                ws,
                "sdk-s3",
                bucket_name=config["bucket"],
                endpoint=config["endpoint"],
                region=config["region"],
                access_key_id=config["access_key_id"],
                secret_access_key=config["secret_access_key"],
                prefix=config["prefix"],
            )
            assert store.bucket_name == config["bucket"]
        else:
            store = Datastore.register_azure_blob_container(
                ws,
                "sdk-azure",
                container_name=config["container"],
                account_name=config["account_name"],
                account_key=config["account_key"],
                endpoint=config["endpoint"],
                prefix=config["prefix"],
            )
            assert store.container_name == config["container"]
        secrets = _secrets(config)
        assert not any(s in repr(store.config) + repr(store) for s in secrets)
        assert store.datastore_type == kind
        assert Datastore.get(ws, store.name).config == store.config
        assert store.name in ws.datastores
        keys = store.upload(src, target_path="up", overwrite=False, show_progress=False)
        assert keys == ["up/a.txt", "up/sub/b.txt"]
        with pytest.raises(ApiError, match="overwrite=True"):
            store.upload_files([src / "a.txt"], target_path="up", show_progress=False)
        store.upload_files([src / "a.txt"], target_path="up", overwrite=True, show_progress=False)
        assert store.download(tmp_path / "back", prefix="up", show_progress=False) == 2
        assert (tmp_path / "back" / "up" / "sub" / "b.txt").read_text() == "beta"
        store.set_as_default()
        assert store.is_default
        assert ws.get_default_datastore().name == store.name
        Datastore.get(ws, "workspaceblobstore").set_as_default()
        with pytest.raises(ApiError, match="pick another name"):
            Datastore.register_local(ws, store.name, str(_local(stack, "x")))

    await asyncio.to_thread(use_sdk)


async def test_sdk_register_local(stack: Stack, tmp_path: Path) -> None:
    """register_local records an absolute root and uploads into it; a relative root is
    refused; ``Datastore(ws)`` with no name is the default datastore."""
    from headrace import Datastore
    from headrace.errors import ApiError

    ws = sdk_workspace(stack)

    def use_sdk() -> None:
        assert Datastore(ws).name == "workspaceblobstore"  # no name: the default
        store = Datastore.register_local(ws, "sdk-local", _local(stack, "root"))
        assert store.config == {"root": str(_local(stack, "root"))}
        store.upload_files([__file__], target_path="code", show_progress=False)
        assert (_local(stack, "root") / "code" / Path(__file__).name).is_file()
        with pytest.raises(ApiError, match="absolute"):
            Datastore.register_local(ws, "sdk-rel", "relative")

    await asyncio.to_thread(use_sdk)
