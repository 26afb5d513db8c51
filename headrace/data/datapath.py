"""``azureml.data.datapath``: a path on a datastore (``DataPath``) and how a step binds it
(``DataPathComputeBinding``).

Both turn into a ``DataReference``, the input headrace runs with: ``DataPath(store, "dir")
.create_data_reference("name", DataPathComputeBinding(mode="download"))`` is
``DataReference(store, "name", "dir", mode="download")``. Where an input appears on the
compute is headrace's choice (the step's scratch area, passed to the script in its arguments),
so ``path_on_compute`` is refused rather than ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from headrace.datarefs import DataReference
from headrace.errors import NotSupportedError

if TYPE_CHECKING:
    from headrace.core.datastore import Datastore

__all__ = ["DataPath", "DataPathComputeBinding"]

_MODES = ("mount", "download")


class DataPathComputeBinding:
    """How a ``DataPath`` is bound for a step: ``mount`` (read in place) or ``download``."""

    def __init__(
        self, mode: str = "mount", path_on_compute: str | None = None, overwrite: bool = False
    ) -> None:
        if mode not in _MODES:
            raise NotSupportedError(
                f"DataPathComputeBinding(mode={mode!r})",
                "bind inputs with mode 'mount' or 'download'; outputs are PipelineData",
            )
        if path_on_compute is not None:
            raise NotSupportedError(
                "DataPathComputeBinding(path_on_compute=...) (choosing where an input appears "
                "on the compute)",
                "leave it out and pass the input in the step's arguments: the script receives "
                "the path where headrace placed it",
            )
        self.mode = mode
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite

    def create_data_reference(
        self, data_reference_name: str | None = None, datapath: DataPath | None = None
    ) -> DataReference:
        """``datapath`` bound this way, as a step input named ``data_reference_name``."""
        if datapath is None:
            raise ValueError("create_data_reference needs the DataPath to bind (datapath=)")
        return datapath.create_data_reference(data_reference_name, self)

    @staticmethod
    def create_from_data_reference(data_reference: DataReference) -> DataPathComputeBinding:
        return DataPathComputeBinding(mode=data_reference.mode)

    def __repr__(self) -> str:
        return f"DataPathComputeBinding(mode={self.mode!r})"


class DataPath:
    """A path on a datastore, not yet bound to a step."""

    def __init__(
        self,
        datastore: Datastore | None = None,
        path_on_datastore: str | None = None,
        name: str | None = None,
    ) -> None:
        if datastore is None:
            raise ValueError("DataPath needs the datastore the path is on (datastore=)")
        self.datastore = datastore
        self._path = path_on_datastore or ""
        self.name = name

    @property
    def datastore_name(self) -> str:
        return self.datastore.name

    @property
    def path_on_datastore(self) -> str:
        return self._path

    def create_data_reference(
        self,
        data_reference_name: str | None = None,
        datapath_compute_binding: DataPathComputeBinding | None = None,
    ) -> DataReference:
        """This path as a step input (mounted unless the binding says ``download``)."""
        binding = datapath_compute_binding or DataPathComputeBinding()
        return DataReference(
            datastore=self.datastore,
            data_reference_name=data_reference_name or self.name,
            path_on_datastore=self._path,
            mode=binding.mode,
        )

    @staticmethod
    def create_from_data_reference(data_reference: DataReference) -> DataPath:
        return DataPath(
            data_reference.datastore, data_reference.path_on_datastore, data_reference.name
        )

    def __repr__(self) -> str:
        return f"DataPath({self.datastore_name}:{self._path!r})"
