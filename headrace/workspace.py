"""``Workspace``: where the headrace API is, read from a config file as in Azure ML."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.client import ApiClient
from headrace.errors import ConfigError
from headrace.state_home import state_home

if TYPE_CHECKING:
    from headrace.core.compute.compute import ComputeTarget
    from headrace.core.datastore import Datastore
    from headrace.experiment import Experiment

__all__ = ["Workspace", "find_config"]


def find_config(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file: ``path``, ``$HEADRACE_CONFIG``, else ``config.json`` in the state
    directory that ``headrace up`` uses too (``$HEADRACE_HOME``, the nearest ``.headrace``
    directory from the current directory up, ``~/.headrace``: see ``headrace.state_home``)."""
    candidates: list[Path] = []
    if path is not None:
        p = Path(path)
        candidates.append(p / "config.json" if p.is_dir() else p)
    elif env := os.environ.get("HEADRACE_CONFIG"):
        candidates.append(Path(env))
    else:
        candidates.append(state_home() / "config.json")
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(
        "no headrace workspace config found (looked at "
        + ", ".join(str(c) for c in candidates)
        + "); start the embedded stack with `headrace up`, or pass the path of a config.json"
    )


class Workspace:
    """A headrace installation, reached through its API.

    ``subscription_id``, ``resource_group`` and ``location`` locate an Azure workspace; a
    headrace installation has none of them, yet v1 code prints them first thing. They are
    read from the workspace config when it has them (an Azure ``config.json`` does) and are
    ``"local"`` otherwise: descriptive values, never used to reach anything."""

    def __init__(
        self,
        name: str,
        api_url: str,
        *,
        token: str | None = None,
        client: ApiClient | None = None,
        subscription_id: str = "local",
        resource_group: str = "local",
        location: str = "local",
    ) -> None:
        self.name = name
        self.api_url = api_url
        self.token = token
        self.client = client or ApiClient(api_url, token=token)
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.location = location

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        """Read the workspace config written by ``headrace up`` (see ``find_config``).

        The API token is ``$HEADRACE_TOKEN`` when set, else the config's ``token``."""
        file = find_config(path)
        try:
            data: dict[str, Any] = json.loads(file.read_text())
            token = os.environ.get("HEADRACE_TOKEN") or data.get("token")
            return cls(
                data.get("workspace") or data.get("workspace_name") or "local",
                data["api_url"],
                token=token,
                subscription_id=str(data.get("subscription_id") or "local"),
                resource_group=str(data.get("resource_group") or "local"),
                location=str(data.get("location") or "local"),
            )
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"{file} is not a valid workspace config: {exc}") from exc

    def get_authentication_header(self) -> dict[str, str]:
        """``{"Authorization": "Bearer ..."}`` for calling endpoints with any HTTP client."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get_default_datastore(self) -> Datastore:
        from headrace.core.datastore import Datastore

        return Datastore(self, self.client.get("/workspace")["default_datastore"])

    @property
    def datastores(self) -> dict[str, Datastore]:
        from headrace.core.datastore import Datastore

        return {d["name"]: Datastore(self, d["name"]) for d in self.client.get("/datastores")}

    @property
    def compute_targets(self) -> dict[str, ComputeTarget]:
        """Compute targets by name, each an object of its type (``AmlCompute`` for a pool)."""
        from headrace.core.compute.compute import ComputeTarget

        return {t.name: t for t in ComputeTarget.list(self)}

    @property
    def experiments(self) -> dict[str, Experiment]:
        """Experiments by name: every experiment that has runs."""
        from headrace.experiment import Experiment

        return {e["name"]: Experiment(self, e["name"]) for e in self.client.get("/experiments")}

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r}, api_url={self.api_url!r})"
