"""Where local datastores may point, against the real API and database.

What matters: a local datastore is a directory the API's users can read and write through the
API, so it may only be under the configured allowed roots (by default the state directory's
``datastores/``), never the state directory itself (it holds the workspace config and its admin
token) and never over the default datastore (its blobs and environments are content-addressed).
Symlinks and ``..`` are resolved before the check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.spec import DEFAULT_DATASTORE
from tests.integration.conftest import Stack


async def _register(stack: Stack, name: str, root: Path | str) -> httpx.Response:
    body: dict[str, Any] = {"name": name, "kind": "local", "config": {"root": str(root)}}
    return await stack.client.post("/api/v1/datastores", json=body)


async def test_local_datastore_under_the_allowed_root_is_registered(stack: Stack) -> None:
    """A directory under the state directory's datastores/ is accepted (and created)."""
    root = stack.settings.home / "datastores" / "mine"
    r = await _register(stack, "mine", root)
    assert r.status_code == 201, r.text
    assert root.is_dir()


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("/etc", "outside the directories local datastores may use"),
        ("outside", "outside the directories local datastores may use"),
        ("home", "state directory"),
        ("datastores", "default datastore"),
        ("default", "default datastore"),
        ("default/blobs", "default datastore"),
        ("dotdot", "state directory"),
        ("symlink", "outside the directories local datastores may use"),
    ],
)
async def test_local_datastore_roots_outside_the_allowed_roots_are_refused(
    stack: Stack, tmp_path: Path, where: str, says: str
) -> None:
    """Roots outside the allowed roots, the state directory, the default datastore (or a
    directory inside or around it), '..' escapes and symlinks out are refused with a 422 naming
    the field and the allowed roots, and nothing is recorded."""
    home = stack.settings.home
    allowed = home / "datastores"
    link = allowed / "link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to("/etc")
    roots = {
        "/etc": Path("/etc"),
        "outside": tmp_path / "elsewhere",
        "home": home,
        "datastores": allowed,
        "default": allowed / DEFAULT_DATASTORE,
        "default/blobs": allowed / DEFAULT_DATASTORE / "blobs",
        "dotdot": Path(f"{allowed}/x/../.."),
        "symlink": link / "sub",
    }
    r = await _register(stack, "bad", roots[where])
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "field 'root'" in detail
    assert says in detail
    assert str(allowed) in detail
    assert (await stack.client.get("/api/v1/datastores/bad")).status_code == 404
