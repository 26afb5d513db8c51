"""``Environment``: the Python packages and variables a step runs with.

As in Azure ML SDK v1: ``Environment(name)`` with ``python.conda_dependencies`` built by
``CondaDependencies.create(pip_packages=[...])``, ``Environment.from_pip_requirements(name,
file_path)``, ``environment_variables``, ``register(workspace)`` / ``Environment.get(workspace,
name, version=None)``, and a ``RunConfiguration`` carrying one. Environments are built from
pip packages; conda packages are installed from PyPI under the same names. The image builder
locks and builds each definition once; runners reuse the result without the package index.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contracts.environment import EnvironmentDefinition, parse_requirements_text
from headrace.errors import HeadraceError, NotFoundError, NotSupportedError

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = [
    "DEFAULT_CPU_IMAGE",
    "CondaDependencies",
    "DockerSection",
    "Environment",
    "EnvironmentError_",
    "PythonSection",
    "RunConfiguration",
]

#: The base image Azure ML v1 code assigns to ``environment.docker.base_image``. headrace
#: records the base image with the environment and uses it as the ``FROM`` of the image
#: builder's Containerfile; steps still run as processes on the runners.
DEFAULT_CPU_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04"


class EnvironmentError_(HeadraceError):
    """An environment definition that cannot be used; the message says what to change."""


def _conda_to_pip(spec: str) -> str:
    """A conda package spec as a pip requirement: ``numpy=1.21`` (conda: 1.21.*) becomes
    ``numpy==1.21.*``, ``conda-forge::numpy`` becomes ``numpy``; other specifiers are kept.
    Python itself cannot be chosen per environment."""
    name = spec.split("::", 1)[-1].strip()
    match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:=(?!=)\s*(\S+)|(.*))", name)
    if match is None:
        raise EnvironmentError_(f"conda package {spec!r} is not a package specification")
    package, pinned, rest = match.groups()
    if package.lower() == "python":
        raise EnvironmentError_(
            f"conda package {spec!r}: Python cannot be chosen per environment; steps run on "
            "the runners' Python (environments are built for it)"
        )
    if pinned is not None:
        return f"{package}=={pinned}" + ("" if pinned.endswith("*") else ".*")
    return package + (rest or "").strip()


class CondaDependencies:
    """The seed's dependency list; headrace installs its pip packages with uv."""

    def __init__(self, pip_packages: list[str] | None = None) -> None:
        self.pip_packages = list(pip_packages or [])

    @classmethod
    def create(
        cls,
        pip_packages: list[str] | None = None,
        conda_packages: list[str] | None = None,
        python_version: str | None = None,
        **_: Any,
    ) -> CondaDependencies:
        pip = list(pip_packages or [])
        if conda_packages:
            from_conda = [_conda_to_pip(p) for p in conda_packages]
            warnings.warn(
                f"conda packages {list(conda_packages)} are installed from PyPI under the same "
                f"names ({', '.join(from_conda)}): headrace builds environments with pip "
                "packages; a package PyPI does not have fails the build, naming it",
                UserWarning,
                stacklevel=2,
            )
            pip += from_conda
        if python_version is not None:
            raise EnvironmentError_(
                "python_version cannot be chosen per environment: steps run on the runners' "
                "Python (environments are built for it)"
            )
        return cls(pip)

    def add_conda_package(self, package: str) -> None:
        """Add a conda package, installed from PyPI under the same name (see ``create``)."""
        self.pip_packages.append(_conda_to_pip(package))

    def add_pip_package(self, package: str) -> None:
        self.pip_packages.append(package)


class PythonSection:
    def __init__(self) -> None:
        self.conda_dependencies = CondaDependencies()
        #: the seed's flag for "use the compute's own Python": the default environment
        self.user_managed_dependencies = False


class DockerSection:
    """``environment.docker`` as v1 code sets it: ``enabled``, ``base_image`` and the rest.

    Steps run as processes on the runners (no container runtime runs them); ``base_image``
    is recorded with the environment and is the ``FROM`` of its generated Containerfile."""

    def __init__(self) -> None:
        self.enabled = False
        self.base_image: str | None = DEFAULT_CPU_IMAGE
        self.base_dockerfile: str | None = None
        self.shm_size: str | None = None
        self.arguments: list[str] = []


class Environment:
    """A named, versioned set of pip requirements and environment variables."""

    def __init__(self, name: str, version: str | None = None) -> None:
        self.name = name
        self.version = version
        self.python = PythonSection()
        self.docker = DockerSection()
        self.environment_variables: dict[str, str] = {}

    @classmethod
    def from_pip_requirements(
        cls, name: str, file_path: str | os.PathLike[str], version: str | None = None
    ) -> Environment:
        """An environment from a requirements file, read now, relative to the current
        directory, as Azure ML does (so a file beside the notebook is found)."""
        env = cls(name, version)
        path = Path(file_path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise EnvironmentError_(
                f"environment {name!r}: cannot read requirements file {path.absolute()}: {exc}"
            ) from None
        try:
            env.python.conda_dependencies = CondaDependencies(parse_requirements_text(text))
        except ValueError as exc:
            raise EnvironmentError_(f"environment {name!r}: {path}: {exc}") from None
        return env

    def is_plain(self) -> bool:
        """No packages, variables or base image of its own: the same as the default
        environment (the runners' own interpreter), which a step then uses."""
        return (
            not self.python.conda_dependencies.pip_packages
            and not self.environment_variables
            and self.docker.base_image in (None, DEFAULT_CPU_IMAGE)
        )

    @classmethod
    def get(cls, workspace: Workspace, name: str, version: str | None = None) -> Environment:
        """A registered environment (the latest version when ``version`` is None)."""
        from urllib.parse import quote

        try:
            info = workspace.client.get(f"/environments/{quote(name)}", version=version)
        except NotFoundError:
            if name.startswith("AzureML-"):
                raise NotSupportedError(
                    f"the Azure ML curated environment {name!r}",
                    "define the packages it has (Environment.from_pip_requirements or "
                    "CondaDependencies) and register it under this name, so the code that "
                    "gets it stays unchanged",
                ) from None
            raise
        return cls._from_definition(EnvironmentDefinition.model_validate(info["definition"]))

    @classmethod
    def list(cls, workspace: Workspace) -> dict[str, Environment]:
        """Registered environments by name (latest versions)."""
        return {
            e["name"]: cls._from_definition(EnvironmentDefinition.model_validate(e["definition"]))
            for e in workspace.client.get("/environments")
        }

    @classmethod
    def _from_definition(cls, defn: EnvironmentDefinition) -> Environment:
        env = cls(defn.name, defn.version)
        env.python.conda_dependencies = CondaDependencies(list(defn.pip_requirements))
        env.environment_variables = dict(defn.env_vars)
        return env

    def register(self, workspace: Workspace) -> Environment:
        """Record this definition under its name and version (immutable once registered)."""
        body = self.definition().model_dump(mode="json")
        body["version"] = self.version  # None: the server numbers a changed definition
        info = workspace.client.post("/environments", body)
        registered = self._from_definition(EnvironmentDefinition.model_validate(info["definition"]))
        self.version = registered.version
        return registered

    def definition(self, source_directory: Path | None = None) -> EnvironmentDefinition:
        """The submitted form. (``source_directory`` is accepted for the step's call; the
        requirements are read when the environment is made.)"""
        requirements = list(self.python.conda_dependencies.pip_packages)
        try:
            base = self.docker.base_image
            return EnvironmentDefinition(
                name=self.name,
                version=self.version or "1",
                pip_requirements=requirements,
                env_vars=dict(self.environment_variables),
                base_image=None if base in (None, DEFAULT_CPU_IMAGE) else base,
            )
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors())
            raise EnvironmentError_(f"environment {self.name!r}: {problems}") from None

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"


class RunConfiguration:
    """The run configuration of v1: here, the environment a step uses.

    ``RunConfiguration()`` has an environment to configure in place
    (``run_config.environment.docker.base_image = DEFAULT_CPU_IMAGE``,
    ``run_config.environment.python.user_managed_dependencies = True``), and
    ``conda_dependencies=`` sets its packages. A step with an environment that adds nothing
    (no packages, variables or base image) runs in the default environment.
    """

    def __init__(
        self,
        script: str | None = None,
        arguments: list[str] | None = None,
        framework: str | None = None,
        communicator: str | None = None,
        conda_dependencies: CondaDependencies | None = None,
        *,
        environment: Environment | None = None,
        command: str | list[str] = "",
    ) -> None:
        if framework not in (None, "Python", "python"):
            raise NotSupportedError(
                f"RunConfiguration(framework={framework!r})",
                "steps run Python scripts; use a PythonScriptStep with an Environment",
            )
        if communicator not in (None, "None"):
            raise NotSupportedError(
                f"RunConfiguration(communicator={communicator!r}) (distributed training)",
                "give a ScriptRunConfig distributed_job_config=MpiConfiguration("
                "process_count_per_node=N) and run it as a CommandStep",
            )
        if command:
            raise NotSupportedError(
                "RunConfiguration(command=...)",
                "give the command to a CommandStep (command=[...]) or a ScriptRunConfig",
            )
        self.script = script
        self.arguments = list(arguments or [])
        self.framework = framework or "Python"
        self.communicator = communicator or "None"
        self.environment = environment or Environment("default")
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies
