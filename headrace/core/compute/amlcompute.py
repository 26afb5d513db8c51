"""``AmlCompute``: a pool of step runners, sized like an Azure ML compute cluster.

``AmlCompute.provisioning_configuration(vm_size=, min_nodes=, max_nodes=)`` describes the pool:
``min_nodes`` runners are kept (the embedded stack starts that many, at least one),
``max_nodes`` bounds an autoscaler from above, and ``vm_size`` is recorded and shown (headrace
does not pick machines; the deployment does). Options that configure Azure infrastructure
(SSH users, virtual networks, managed identities, public IPs) have no counterpart and are
refused by name rather than ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from headrace.core.compute.compute import ComputeTarget, ComputeTargetProvisioningConfiguration
from headrace.errors import NotSupportedError

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = ["AmlCompute", "AmlComputeProvisioningConfiguration", "ScaleSettings"]


@dataclass(frozen=True)
class ScaleSettings:
    """The pool's bounds, as ``AmlCompute.scale_settings`` reports them."""

    minimum_node_count: int
    maximum_node_count: int
    idle_seconds_before_scaledown: int


class AmlComputeProvisioningConfiguration(ComputeTargetProvisioningConfiguration):
    """The recorded size of a runner pool (see ``AmlCompute.provisioning_configuration``)."""

    kind: ClassVar[str] = "amlcompute"

    def __init__(
        self,
        vm_size: str,
        vm_priority: str,
        min_nodes: int,
        max_nodes: int | None,
        idle_seconds_before_scaledown: int,
        tags: dict[str, str] | None,
        description: str | None,
    ) -> None:
        self.vm_size = vm_size
        self.vm_priority = vm_priority
        self.min_nodes = min_nodes
        self.max_nodes = max_nodes
        self.idle_seconds_before_scaledown = idle_seconds_before_scaledown
        self.tags = dict(tags or {})
        self.description = description or ""

    def to_body(self) -> dict[str, Any]:
        return {
            "vm_size": self.vm_size,
            "vm_priority": self.vm_priority,
            "min_nodes": self.min_nodes,
            "max_nodes": self.max_nodes,
            "idle_seconds_before_scaledown": self.idle_seconds_before_scaledown,
            "tags": self.tags,
            "description": self.description,
        }


#: provisioning options that configure Azure infrastructure: (parameter, its default, what it is)
_AZURE_ONLY = (
    ("admin_username", None, "an SSH administrator account on the cluster's nodes"),
    ("admin_user_password", None, "an SSH administrator account on the cluster's nodes"),
    ("admin_user_ssh_key", None, "an SSH administrator account on the cluster's nodes"),
    ("vnet_resourcegroup_name", None, "placing the cluster in an Azure virtual network"),
    ("vnet_name", None, "placing the cluster in an Azure virtual network"),
    ("subnet_name", None, "placing the cluster in an Azure virtual network"),
    ("remote_login_port_public_access", "NotSpecified", "the nodes' public SSH port"),
    ("identity_type", None, "a managed identity for the cluster"),
    ("identity_id", None, "a managed identity for the cluster"),
    ("location", None, "the Azure region of the cluster"),
    ("enable_node_public_ip", True, "public IP addresses on the nodes"),
)


class AmlCompute(ComputeTarget):
    """A runner pool created from ``AmlCompute.provisioning_configuration``."""

    _kind: ClassVar[str | None] = "amlcompute"

    @staticmethod
    def provisioning_configuration(
        vm_size: str = "",
        vm_priority: str = "dedicated",
        min_nodes: int = 0,
        max_nodes: int | None = None,
        idle_seconds_before_scaledown: int = 1800,
        admin_username: str | None = None,
        admin_user_password: str | None = None,
        admin_user_ssh_key: str | None = None,
        vnet_resourcegroup_name: str | None = None,
        vnet_name: str | None = None,
        subnet_name: str | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        remote_login_port_public_access: str = "NotSpecified",
        identity_type: str | None = None,
        identity_id: str | None = None,
        location: str | None = None,
        enable_node_public_ip: bool = True,
    ) -> AmlComputeProvisioningConfiguration:
        """The pool's size: ``min_nodes`` runners kept, at most ``max_nodes``; ``vm_size``
        recorded. Azure infrastructure options raise ``NotSupportedError``."""
        given = {
            "admin_username": admin_username,
            "admin_user_password": admin_user_password,
            "admin_user_ssh_key": admin_user_ssh_key,
            "vnet_resourcegroup_name": vnet_resourcegroup_name,
            "vnet_name": vnet_name,
            "subnet_name": subnet_name,
            "remote_login_port_public_access": remote_login_port_public_access,
            "identity_type": identity_type,
            "identity_id": identity_id,
            "location": location,
            "enable_node_public_ip": enable_node_public_ip,
        }
        for param, default, what in _AZURE_ONLY:
            if given[param] != default:
                raise NotSupportedError(
                    f"AmlCompute.provisioning_configuration({param}=...) ({what})",
                    "a headrace compute target is a pool of step runners on machines your "
                    f"deployment provides; leave {param} out and configure the machines there",
                )
        return AmlComputeProvisioningConfiguration(
            vm_size=vm_size,
            vm_priority=vm_priority,
            min_nodes=min_nodes,
            max_nodes=max_nodes,
            idle_seconds_before_scaledown=idle_seconds_before_scaledown,
            tags=tags,
            description=description,
        )

    @property
    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = self._info.get("config", {})
        return config

    @property
    def vm_size(self) -> str:
        """The machine size asked for (recorded; the deployment chooses machines)."""
        return str(self._config.get("vm_size", ""))

    @property
    def vm_priority(self) -> str:
        return str(self._config.get("vm_priority", "dedicated"))

    @property
    def scale_settings(self) -> ScaleSettings:
        """``min_nodes`` runners kept, at most ``max_nodes``."""
        c = self._config
        return ScaleSettings(
            minimum_node_count=int(c.get("min_nodes", 0)),
            maximum_node_count=int(c.get("max_nodes", 1)),
            idle_seconds_before_scaledown=int(c.get("idle_seconds_before_scaledown", 1800)),
        )

    def wait_for_completion(  # type: ignore[override]  # v1's own signatures differ so
        self,
        show_output: bool = False,
        min_node_count: int | None = None,
        timeout_in_minutes: int = 25,
        is_delete_operation: bool = False,
    ) -> None:
        """Return once the pool is registered (at once: registering is synchronous here).

        ``min_node_count`` (waiting for that many running nodes) is refused: the API does
        not see runner processes, and a step sent to the pool waits for its first runner
        anyway."""
        if min_node_count is not None:
            raise NotSupportedError(
                "AmlCompute.wait_for_completion(min_node_count=...) (waiting for running nodes)",
                "leave min_node_count out: steps sent to the target wait for its runners, "
                "which the embedded stack starts (min_nodes of them, at least one)",
            )
        super().wait_for_completion(show_output, is_delete_operation)
        if show_output:
            s = self.scale_settings
            print(
                f"  vm_size {self.vm_size or '-'}, runners {s.minimum_node_count} to "
                f"{s.maximum_node_count}"
            )

    @staticmethod
    def supported_vmsizes(workspace: Workspace, location: str | None = None) -> list[Any]:
        """Not in headrace: machine sizes are whatever your deployment runs runners on."""
        raise NotSupportedError(
            "AmlCompute.supported_vmsizes",
            "vm_size is recorded as given; choose the machines in your deployment",
        )
