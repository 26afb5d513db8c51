"""Data bindings of steps: ``DataReference`` (a path on a datastore) and ``PipelineData``
(intermediate data produced by one step and consumed by others)."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Literal, Self

from contracts.spec import DEFAULT_DATASTORE

if TYPE_CHECKING:
    from headrace.core.datastore import Datastore
    from headrace.steps import PipelineStep

__all__ = ["DataReference", "PipelineData"]


class _Binding:
    """Which steps write one ``PipelineData`` and which name it only in their arguments.

    Shared by the object and its ``as_mount()``/``as_download()`` copies, so a step that
    consumes a copy still finds the producer: a ``Pipeline`` given only its last step pulls in
    every producer upstream (v1's transitive closure) by following these bindings."""

    def __init__(self) -> None:
        #: steps that list it in ``outputs=``
        self.declared_by: list[PipelineStep] = []
        #: steps that name it only in ``arguments=`` (neither in inputs nor outputs)
        self.argument_users: list[PipelineStep] = []

    def producers(self) -> list[PipelineStep]:
        """The steps writing it: those declaring it an output, else (as in Azure ML) those
        naming it only in their arguments."""
        return list(self.declared_by or self.argument_users)


class _Bindable:
    mode: Literal["mount", "download"] = "mount"

    def as_mount(self) -> Self:
        """Bind read-only without copying where the datastore allows (a link locally)."""
        clone = copy.copy(self)
        clone.mode = "mount"
        return clone

    def as_download(self) -> Self:
        """Copy the data into the step's scratch area before it starts."""
        clone = copy.copy(self)
        clone.mode = "download"
        return clone


class DataReference(_Bindable):
    """A path on a datastore, usable as a step input and argument."""

    def __init__(
        self,
        datastore: Datastore,
        data_reference_name: str | None = None,
        path_on_datastore: str | None = None,
        mode: str = "mount",
    ) -> None:
        self.datastore = datastore
        self.data_reference_name = data_reference_name or datastore.name
        self.path_on_datastore = path_on_datastore or ""
        self.mode = "download" if mode == "download" else "mount"

    @property
    def name(self) -> str:
        return self.data_reference_name

    def __repr__(self) -> str:
        return (
            f"DataReference({self.data_reference_name!r}, {self.datastore.name}:"
            f"{self.path_on_datastore!r}, mode={self.mode})"
        )


class PipelineData(_Bindable):
    """Intermediate data: the output of one step, the input of the steps that list it."""

    def __init__(
        self,
        name: str,
        datastore: Datastore | None = None,
        output_name: str | None = None,
        is_directory: bool = True,
    ) -> None:
        self.name = name
        self.datastore = datastore
        self.output_name = output_name or name
        self.is_directory = is_directory
        self._binding = _Binding()

    @property
    def datastore_name(self) -> str:
        return self.datastore.name if self.datastore is not None else DEFAULT_DATASTORE

    def as_upload(self, overwrite: bool = False) -> PipelineData:
        """The seed's upload mode for an output: the step writes into a local directory and
        its files are uploaded to the datastore once the step succeeds. It is how every
        output is committed here (never written through a mount), so this returns the same
        output; outputs land under a path unique to the run, step and attempt, so nothing
        is ever overwritten."""
        return self

    def __repr__(self) -> str:
        return f"PipelineData({self.name!r}, datastore={self.datastore_name!r})"
