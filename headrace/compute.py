"""``ComputeTarget``: a named pool of step runners (``local`` in the embedded stack)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from headrace.errors import NotFoundError

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = ["ComputeTarget"]


class ComputeTarget:
    """A compute target registered in the workspace; steps name it to run on its runners."""

    def __init__(self, workspace: Workspace, name: str, kind: str | None = None) -> None:
        if kind is None:
            known = {c["name"]: c["kind"] for c in workspace.client.get("/compute")}
            if name not in known:
                raise NotFoundError(
                    404, f"unknown compute target {name!r}; known: {', '.join(sorted(known))}"
                )
            kind = known[name]
        self.workspace = workspace
        self.name = name
        self.kind = kind

    def __repr__(self) -> str:
        return f"ComputeTarget(name={self.name!r}, kind={self.kind!r})"
