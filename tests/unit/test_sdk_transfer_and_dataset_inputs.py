"""DataTransferStep and dataset inputs become the submitted spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts.spec import DatasetInput, DatastoreInput, InputArg, PipelineDataInput
from headrace import DataReference, Dataset, Pipeline, PipelineData, PythonScriptStep
from headrace.client import ApiClient
from headrace.pipeline.steps import DataTransferStep
from headrace.workspace import Workspace


class FakeDatastore:
    def __init__(self, name: str) -> None:
        self.name = name


def workspace() -> Workspace:
    transport = httpx.MockTransport(lambda r: httpx.Response(404, json={}))
    return Workspace("local", "http://api", client=ApiClient("http://api", transport=transport))


def test_transfer_steps_and_their_consumers(tmp_path: Path) -> None:
    """DataTransferSteps become transfer steps with a download input and an output their
    consumers read; a source that is not a DataReference or PipelineData is a TypeError."""
    src_ds: Any = FakeDatastore("blob")
    dst_ds: Any = FakeDatastore("s3")
    source = DataReference(datastore=src_ds, data_reference_name="raw", path_on_datastore="d")
    copied = PipelineData("copied", datastore=dst_ds)
    archive = DataReference(datastore=dst_ds, data_reference_name="archive", path_on_datastore="a")
    to_s3 = DataTransferStep(
        "to s3", source_data_reference=source, destination_data_reference=copied
    )
    keep = DataTransferStep(
        "keep", source_data_reference=copied, destination_data_reference=archive
    )
    read = PythonScriptStep("r.py", arguments=[copied], source_directory=tmp_path)
    spec = Pipeline(workspace(), [to_s3, keep, read]).to_spec({str(tmp_path.resolve()): "sha256:1"})
    t, k, r = spec.steps
    assert (t.name, t.step_kind, t.script_name, t.snapshot) == ("to_s3", "transfer", "", "")
    assert t.inputs == [
        DatastoreInput(name="raw", datastore="blob", path_on_datastore="d", mode="download")
    ]
    assert [(o.name, o.datastore, o.path_on_datastore) for o in t.outputs] == [
        ("copied", "s3", None)
    ]
    assert k.inputs == [PipelineDataInput(name="copied", mode="download")]
    assert [(o.name, o.path_on_datastore) for o in k.outputs] == [("archive", "a")]
    assert r.arguments == [InputArg(name="copied")]
    with pytest.raises(TypeError, match="DataReference or PipelineData"):
        DataTransferStep("x", source_data_reference="nope", destination_data_reference=copied)  # type: ignore[arg-type]


def test_dataset_inputs_from_named_inputs_and_arguments(tmp_path: Path) -> None:
    """Datasets given as inputs or arguments (datastores by name) become dataset inputs with
    their kind, mode, options and per-path bindings; unregistered ones carry no name."""
    ds = "blob"  # a datastore may be named instead of given
    table = Dataset.Tabular.from_delimited_files(
        path=[(ds, "t/a.csv"), (ds, "t/b.csv")], separator=";"
    )
    files = Dataset.File.from_files(path=(ds, "img/"))
    step = PythonScriptStep(
        "s.py",
        arguments=["--images", files.as_named_input("images").as_mount()],
        inputs=[table.as_named_input("training")],
        source_directory=tmp_path,
    )
    (s,) = Pipeline(workspace(), [step]).to_spec({str(tmp_path.resolve()): "sha256:1"}).steps
    training, images = s.inputs
    assert isinstance(training, DatasetInput)
    assert isinstance(images, DatasetInput)
    assert (training.dataset_kind, training.mode, training.options["separator"]) == (
        "tabular",
        "direct",
        ";",
    )
    assert [(p.datastore, p.path) for p in training.paths] == [
        ("blob", "t/a.csv"),
        ("blob", "t/b.csv"),
    ]
    assert [n for n, _ in training.bindings()] == ["training/0", "training/1"]
    assert (images.dataset_kind, images.mode, [n for n, _ in images.bindings()]) == (
        "file",
        "mount",
        ["images"],
    )
    assert s.arguments[1] == InputArg(name="images")
    assert training.dataset_name is None  # not registered: no lineage, still runnable
