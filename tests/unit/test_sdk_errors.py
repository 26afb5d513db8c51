"""SDK errors a user meets: an unreachable API, seed-style step names, hostile listings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from headrace import Experiment, Pipeline, PythonScriptStep
from headrace.client import ApiClient
from headrace.errors import ApiUnavailableError, HeadraceError
from headrace.experiment import PipelineRun, PortDataReference, StepRun
from headrace.workspace import Workspace


def _workspace(handler: Any) -> Workspace:
    client = ApiClient("http://api", transport=httpx.MockTransport(handler))
    return Workspace("local", "http://api", client=client)


def test_unreachable_api_is_a_headrace_error_saying_how_to_start() -> None:
    """A refused connection raises ApiUnavailableError pointing at `headrace up`."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    ws = _workspace(refuse)
    with pytest.raises(ApiUnavailableError, match="headrace up") as info:
        ws.get_default_datastore()
    assert isinstance(info.value, HeadraceError)


def test_display_names_with_spaces_become_valid_step_names(tmp_path: Path) -> None:
    """The seed's ``name="Hello World"`` submits as ``Hello_World`` and is found by either."""
    (tmp_path / "hello_world.py").write_text("")
    step = PythonScriptStep(
        script_name="hello_world.py", name="Hello World", source_directory=tmp_path
    )
    ws = _workspace(lambda r: httpx.Response(404, json={"detail": "unused"}))
    spec = Pipeline(ws, [step]).to_spec({str(step.source_path): "sha256:" + "0" * 64})
    assert spec.steps[0].name == "Hello_World"
    assert step.name == "Hello World"

    detail = {"run_id": "r", "status": "Completed", "steps": [{"name": "Hello_World"}]}
    run = PipelineRun(Experiment(_workspace(lambda r: httpx.Response(200, json=detail)), "e"), "r")
    assert [s.name for s in run.find_step_run("Hello World")] == ["Hello_World"]
    assert run.find_step_run("nope") == []


def test_output_files_cannot_be_written_outside_the_target(tmp_path: Path) -> None:
    """A listed file path escaping ``local_path`` is refused instead of written."""
    listing = {"datastore": "d", "path": "p", "files": [{"path": "../escape.txt", "size": 1}]}
    ws = _workspace(lambda r: httpx.Response(200, json=listing))
    run = PipelineRun(Experiment(ws, "e"), "r")
    port = PortDataReference(StepRun(run, {"name": "s"}), "out")
    with pytest.raises(ValueError, match="must not contain"):
        port.download(tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_oversize_request_is_refused_before_sending() -> None:
    """A pipeline whose arguments cannot fit in one event is refused by the SDK with the
    limit and what to do, before anything is sent."""
    from contracts.limits import MAX_EVENT_BYTES
    from headrace.client import check_request_size
    from headrace.errors import RequestTooLargeError

    body = {"pipeline": {"steps": [{"arguments": ["x" * (100 * 1024 * 1024)]}]}, "parameters": {}}
    with pytest.raises(RequestTooLargeError, match=f"{MAX_EVENT_BYTES:,} bytes"):
        check_request_size("RunRequested", body)
    check_request_size("RunRequested", {"pipeline": {"steps": []}, "parameters": {"a": 1}})


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("/etc", "relative"),
        ("../up", "'..'"),
        ("a/../../b", "'..'"),
        ("data\\x", "backslashes"),
        ("bad\x00name", "control character"),
    ],
)
@pytest.mark.parametrize("method", ["upload_files", "upload"])
def test_upload_target_path_must_stay_inside_the_datastore(
    tmp_path: Path, target: str, says: str, method: str
) -> None:
    """An absolute target_path, one with '..', a backslash or a control character is refused
    by the SDK with a ValueError naming target_path, before anything is sent."""
    from headrace.core.datastore import Datastore

    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={})

    store = Datastore._from_info(_workspace(record), {"name": "d", "kind": "local"})
    (tmp_path / "f.txt").write_text("x")

    def upload() -> None:
        if method == "upload":
            store.upload(tmp_path, target_path=target, show_progress=False)
        else:
            store.upload_files([tmp_path / "f.txt"], target_path=target, show_progress=False)

    with pytest.raises(ValueError, match="target_path") as info:
        upload()
    assert says in str(info.value)
    assert sent == []


def test_upload_with_a_plain_target_path_still_works(tmp_path: Path) -> None:
    """A relative target_path (a trailing slash tolerated as before) is used as the
    key prefix."""
    from headrace.core.datastore import Datastore

    keys: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        keys.append(request.url.path)
        return httpx.Response(201, json={})

    store = Datastore._from_info(_workspace(record), {"name": "d", "kind": "local"})
    (tmp_path / "f.txt").write_text("x")
    assert store.upload_files(
        [tmp_path / "f.txt"], target_path="in/data/", show_progress=False
    ) == ["in/data/f.txt"]
    assert keys == ["/api/v1/datastores/d/objects/in/data/f.txt"]


def test_data_as_a_pipeline_parameter_value_says_it_is_not_supported() -> None:
    """A dataset (or any non-scalar) given as a pipeline parameter value is refused with the
    v1 feature named and what to do, not a JSON encoding error."""
    from headrace.client import parameter_assignments
    from headrace.errors import NotSupportedError

    class FileDataset:
        """Stands in for a dataset object: only its type name matters here."""

    with pytest.raises(NotSupportedError, match="FileDataset as the value of pipeline parameter"):
        parameter_assignments({"file_ds_param": FileDataset()})
    assert parameter_assignments({"a": 1, "b": "x", "c": 0.5, "d": True}) == {
        "a": 1,
        "b": "x",
        "c": 0.5,
        "d": True,
    }
    assert parameter_assignments(None) == {}
