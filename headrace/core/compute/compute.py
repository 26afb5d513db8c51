"""``ComputeTarget``: a named pool of step runners (``local`` in the embedded stack).

In Azure ML a compute target is a cluster of virtual machines; in headrace it is a pool of step
runners that consume the target's dispatch topic. Looking one up, creating one and waiting for
it keep the v1 calls: ``ComputeTarget(ws, name)`` returns the object of the target's type
(``AmlCompute`` for a pool created with ``AmlCompute.provisioning_configuration``) or raises
``ComputeTargetException``, which is how v1 code decides to create it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Self, cast
from urllib.parse import quote

from headrace.errors import ApiError, NotFoundError, NotSupportedError
from headrace.exceptions import ComputeTargetException

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = ["ComputeTarget", "ComputeTargetProvisioningConfiguration"]


class ComputeTargetProvisioningConfiguration:
    """What ``ComputeTarget.create`` sends: built by a target type's
    ``provisioning_configuration`` (``AmlCompute.provisioning_configuration``)."""

    #: the server's name of the kind of target this creates
    kind: ClassVar[str] = ""

    def to_body(self) -> dict[str, Any]:
        """The fields of ``POST /compute`` (besides the name)."""
        raise NotImplementedError


class ComputeTarget:
    """A compute target registered in the workspace; steps name it to run on its runners.

    ``ComputeTarget(ws, name)`` (and a subclass such as ``AmlCompute(ws, name)``) fetches the
    target and returns an instance of its type, as in Azure ML."""

    #: the server's kind this class stands for (None: any kind)
    _kind: ClassVar[str | None] = None
    #: Azure ML's ``type`` of each kind
    _TYPES: ClassVar[dict[str, str]] = {"local": "local", "amlcompute": "AmlCompute"}

    workspace: Workspace
    name: str
    kind: str
    _info: dict[str, Any]

    def __new__(cls, workspace: Workspace, name: str) -> Self:
        try:
            view = workspace.client.get(f"/compute/{quote(name, safe='')}")
        except NotFoundError as exc:
            raise ComputeTargetException(
                f"ComputeTargetNotFound: {exc}; create it with ComputeTarget.create(ws, "
                f"{name!r}, AmlCompute.provisioning_configuration(...))"
            ) from None
        target = cls._class_of(view["kind"])
        if not issubclass(target, cls):
            raise ComputeTargetException(
                f"compute target {name!r} is of type {cls._TYPES.get(view['kind'], view['kind'])}"
                f", not {cls.__name__}; get it with ComputeTarget(ws, {name!r})"
            )
        return cast(Self, target._from_view(workspace, view))

    def __init__(self, workspace: Workspace, name: str) -> None:
        """Nothing to do: ``__new__`` fetched the target and filled the object."""

    @staticmethod
    def _class_of(kind: str) -> type[ComputeTarget]:
        from headrace.core.compute.amlcompute import AmlCompute

        return AmlCompute if kind == AmlCompute._kind else ComputeTarget

    @classmethod
    def _from_view(cls, workspace: Workspace, view: dict[str, Any]) -> ComputeTarget:
        """The object for a view the API returned (no request)."""
        obj = object.__new__(cls._class_of(view["kind"]))
        obj.workspace = workspace
        obj._load(view)
        return obj

    def _load(self, view: dict[str, Any]) -> None:
        self.name = str(view["name"])
        self.kind = str(view["kind"])
        self._info = view

    @property
    def type(self) -> str:
        """Azure ML's type name: ``AmlCompute`` for a runner pool, ``local`` for ``local``."""
        return self._TYPES.get(self.kind, self.kind)

    @property
    def provisioning_state(self) -> str:
        """``Succeeded``: registering a target is synchronous in headrace, so a target that
        can be fetched is ready to take steps (they wait on its topic for a runner)."""
        return "Succeeded"

    @property
    def provisioning_errors(self) -> list[str]:
        return []

    @property
    def created_on(self) -> str | None:
        created = self._info.get("created_at")
        return str(created) if created is not None else None

    @property
    def description(self) -> str:
        return str(self._info.get("config", {}).get("description", ""))

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._info.get("config", {}).get("tags", {}))

    @staticmethod
    def create(workspace: Workspace, name: str, provisioning_configuration: Any) -> ComputeTarget:
        """Register a compute target from a type's ``provisioning_configuration``.

        Refused (``ComputeTargetException``) when the name is taken or the configuration is
        invalid, with the server's reason."""
        if not isinstance(provisioning_configuration, ComputeTargetProvisioningConfiguration):
            raise ComputeTargetException(
                "ComputeTarget.create needs a provisioning configuration such as "
                "AmlCompute.provisioning_configuration(vm_size=..., max_nodes=...), got "
                f"{type(provisioning_configuration).__name__}"
            )
        body = {
            "name": name,
            "kind": provisioning_configuration.kind,
            **provisioning_configuration.to_body(),
        }
        try:
            view = workspace.client.post("/compute", body)
        except ApiError as exc:
            raise ComputeTargetException(
                f"compute target {name!r} was not created: {exc}"
            ) from None
        return ComputeTarget._from_view(workspace, view)

    @staticmethod
    def list(workspace: Workspace) -> list[ComputeTarget]:
        """Every compute target of the workspace."""
        return [ComputeTarget._from_view(workspace, v) for v in workspace.client.get("/compute")]

    def refresh_state(self) -> None:
        """Read the target again from the API."""
        self._load(self.workspace.client.get(f"/compute/{quote(self.name, safe='')}"))

    def wait_for_completion(
        self, show_output: bool = False, is_delete_operation: bool = False
    ) -> None:
        """Return once the target is ready; with ``show_output`` say so.

        Registering is synchronous here, so this only confirms the target exists (a step sent
        to it waits for a runner rather than failing)."""
        if is_delete_operation:
            raise NotSupportedError(
                "Deleting a compute target (wait_for_completion(is_delete_operation=True))",
                "headrace keeps compute targets; stop sending steps to one to leave it idle",
            )
        self.refresh_state()
        if show_output:
            print(f"compute target {self.name!r} ({self.type}): {self.provisioning_state}")

    def delete(self) -> None:
        """Not in headrace: a target's runners are managed by the deployment."""
        raise NotSupportedError(
            "ComputeTarget.delete",
            "headrace keeps compute targets; stop their runners in your deployment, or stop "
            "sending steps to the target",
        )

    def detach(self) -> None:
        """Not in headrace: nothing is attached from outside."""
        raise NotSupportedError(
            "ComputeTarget.detach",
            "headrace has no attached compute; its targets are pools of step runners",
        )

    @staticmethod
    def attach(workspace: Workspace, name: str, attach_configuration: Any) -> ComputeTarget:
        """Not in headrace: attaching existing Azure compute has no counterpart."""
        raise NotSupportedError(
            "ComputeTarget.attach (attaching existing compute)",
            "create a runner pool with ComputeTarget.create(ws, name, "
            "AmlCompute.provisioning_configuration(...)) and run runners for it "
            "(`HEADRACE_COMPUTE_TARGET=name headrace serve step_runner`)",
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, type={self.type!r})"
