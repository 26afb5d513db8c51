"""Environments in the SDK: the seed's ways to declare one, and the definition they submit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from headrace import Environment, Pipeline, PythonScriptStep
from headrace.client import ApiClient
from headrace.core.conda_dependencies import CondaDependencies
from headrace.core.runconfig import RunConfiguration
from headrace.environment import EnvironmentError_
from headrace.workspace import Workspace

SNAP = "sha256:" + "1" * 64


def workspace(handler: Any = None) -> Workspace:
    transport = httpx.MockTransport(handler or (lambda r: httpx.Response(404, json={})))
    return Workspace("local", "http://api", client=ApiClient("http://api", transport=transport))


def spec_of(tmp_path: Path, *steps: PythonScriptStep) -> Any:
    return Pipeline(workspace=workspace(), steps=list(steps)).to_spec({str(tmp_path): SNAP})


def test_conda_dependencies_through_a_run_configuration(tmp_path: Path) -> None:
    """Conda pip packages and variables reach the spec through a run configuration or the step;
    two steps share one definition, a step with none runs in the default."""
    env = Environment(name="sk")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["numpy==2.*"])
    env.environment_variables = {"MODE": "fast"}
    rc = RunConfiguration()
    rc.environment = env
    a = PythonScriptStep("a.py", name="a", runconfig=rc, source_directory=tmp_path)
    b = PythonScriptStep("b.py", name="b", environment=env, source_directory=tmp_path)
    c = PythonScriptStep("c.py", name="c", source_directory=tmp_path)
    spec = spec_of(tmp_path.resolve(), a, b, c)
    (defn,) = spec.environments  # one definition, shared by a and b
    assert defn.pip_requirements == ["numpy==2.*"]
    assert defn.env_vars == {"MODE": "fast"}
    assert [s.environment for s in spec.steps] == [defn.key, defn.key, "default"]
    assert defn.key.startswith("sk@1:")


def test_changing_a_requirement_changes_the_key(tmp_path: Path) -> None:
    """Changing one pinned requirement gives the environment another key."""
    keys = set()
    for req in ("six==1.16.0", "six==1.15.0"):
        env = Environment(name="e")
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=[req])
        keys.add(env.definition().key)
    assert len(keys) == 2


def test_requirements_file_is_read_when_the_environment_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in Azure ML, ``from_pip_requirements`` reads the file at once, relative to the
    current directory (a file beside the notebook, outside any step's source directory),
    with comments and blank lines dropped."""
    (tmp_path / "requirements.txt").write_text("# pinned\nsix==1.16.0  # why\n\ntomli-w\n")
    src = tmp_path / "src"
    src.mkdir()
    monkeypatch.chdir(tmp_path)
    env = Environment.from_pip_requirements("req", "requirements.txt")
    (tmp_path / "requirements.txt").unlink()  # read already: later changes do not count
    step = PythonScriptStep("a.py", environment=env, source_directory=src)
    (defn,) = spec_of(src.resolve(), step).environments
    assert defn.pip_requirements == ["six==1.16.0", "tomli-w"]


def test_a_missing_requirements_file_names_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A requirements file that is not there is an error naming the path it looked at."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EnvironmentError_, match=str(tmp_path / "nope.txt")):
        Environment.from_pip_requirements("req", "nope.txt")


def test_run_configuration_has_an_environment_to_configure(tmp_path: Path) -> None:
    """``RunConfiguration()`` comes with an environment whose docker and python sections v1
    code sets; left as they are, the step uses the default environment; a base image of its
    own is recorded in the definition; ``conda_dependencies=`` sets the packages."""
    from headrace.core.runconfig import DEFAULT_CPU_IMAGE

    rc = RunConfiguration()
    rc.environment.docker.enabled = True
    rc.environment.docker.base_image = DEFAULT_CPU_IMAGE
    rc.environment.python.user_managed_dependencies = False
    plain = PythonScriptStep("a.py", runconfig=rc, source_directory=tmp_path)
    assert plain.environment is None
    custom = RunConfiguration(conda_dependencies=CondaDependencies.create(pip_packages=["six"]))
    custom.environment.docker.base_image = "python:3.11-bookworm"
    step = PythonScriptStep("a.py", runconfig=custom, source_directory=tmp_path)
    defn = step.environment_definition()
    assert defn is not None
    assert defn.pip_requirements == ["six"]
    assert defn.base_image == "python:3.11-bookworm"


def test_run_configuration_refuses_what_it_cannot_run() -> None:
    """Distributed communicators and other frameworks name the v1 feature and what to do."""
    from headrace.errors import NotSupportedError

    with pytest.raises(NotSupportedError, match="communicator='Mpi'"):
        RunConfiguration(communicator="Mpi")
    with pytest.raises(NotSupportedError, match="framework='PySpark'"):
        RunConfiguration(framework="PySpark")


def test_malformed_requirements_and_conda_packages_fail_clearly(tmp_path: Path) -> None:
    """A pip option in requirements (with its line), Python as a conda package, a bad name
    and a reserved variable each fail with an error saying which."""
    (tmp_path / "requirements.txt").write_text("six\n--index-url http://evil\n")
    with pytest.raises(EnvironmentError_, match="line 2: '--index-url http://evil' is a pip"):
        Environment.from_pip_requirements("req", tmp_path / "requirements.txt")
    with pytest.raises(EnvironmentError_, match="Python cannot be chosen"):
        CondaDependencies.create(conda_packages=["python=3.8"])
    bad = Environment(name="bad name!")
    with pytest.raises(EnvironmentError_, match="environment name 'bad name!'"):
        bad.definition()
    reserved = Environment(name="ok")
    reserved.environment_variables = {"HEADRACE_RUN_ID": "x"}
    with pytest.raises(EnvironmentError_, match="reserved"):
        reserved.definition()


def test_register_and_get_round_trip() -> None:
    """Register leaves numbering to the server; get of that version gives the same packages back."""
    stored: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            body = json.loads(request.content)
            assert body["version"] is None  # the server numbers versions
            stored.update(body, version="3")
            return httpx.Response(201, json={"name": "sk", "version": "3", "definition": stored})
        assert request.url.params.get("version") == "3"
        return httpx.Response(200, json={"name": "sk", "version": "3", "definition": stored})

    ws = workspace(handler)
    env = Environment(name="sk")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six"])
    registered = env.register(ws)
    assert registered.version == "3"
    again = Environment.get(ws, "sk", version="3")
    assert again.python.conda_dependencies.pip_packages == ["six"]


def test_steps_waiting_for_their_environment_say_so() -> None:
    """A step not started while its environment builds says it waits for it; otherwise nothing."""
    from services.api.store import _waiting_for

    step: dict[str, Any] = {
        "status": "NotStarted",
        "environment_ready": False,
        "environment": "sk@1:0123456789abcdef",
        "snapshot_ready": True,
    }
    assert _waiting_for(step) == "environment sk@1 (being built)"  # type: ignore[arg-type]
    assert _waiting_for({**step, "environment_ready": True}) is None  # type: ignore[arg-type]
    assert _waiting_for({**step, "status": "Running"}) is None  # type: ignore[arg-type]


def test_conda_packages_are_installed_from_pypi_under_their_names() -> None:
    """``conda_packages`` (the v1 notebooks ask for scikit-learn this way) become pip
    requirements of the same names, conda's ``=`` pins as prefix matches, and a warning says
    they come from PyPI."""
    with pytest.warns(UserWarning, match="installed from PyPI"):
        deps = CondaDependencies.create(
            pip_packages=["six"],
            conda_packages=["scikit-learn", "numpy=1.26", "conda-forge::pandas"],
        )
    assert deps.pip_packages == ["six", "scikit-learn", "numpy==1.26.*", "pandas"]
    deps.add_conda_package("scipy>=1.10")
    assert deps.pip_packages[-1] == "scipy>=1.10"
