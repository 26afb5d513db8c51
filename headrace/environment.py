"""``Environment``: the Python packages and variables a step runs with.

As in Azure ML SDK v1: ``Environment(name)`` with ``python.conda_dependencies`` built by
``CondaDependencies.create(pip_packages=[...])``, ``Environment.from_pip_requirements(name,
file_path)``, ``environment_variables``, ``register(workspace)`` / ``Environment.get(workspace,
name, version=None)``, and a ``RunConfiguration`` carrying one. Only pip packages are
supported (conda packages raise a clear error). The image builder locks and builds each
definition once; runners reuse the result without the package index.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contracts.environment import EnvironmentDefinition, parse_requirements_text
from headrace.errors import HeadraceError

if TYPE_CHECKING:
    from headrace.workspace import Workspace

__all__ = [
    "CondaDependencies",
    "Environment",
    "EnvironmentError_",
    "PythonSection",
    "RunConfiguration",
]


class EnvironmentError_(HeadraceError):
    """An environment definition that cannot be used; the message says what to change."""


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
        if conda_packages:
            raise EnvironmentError_(
                f"conda packages {conda_packages} are not supported: headrace builds "
                "environments from pip packages; list them in pip_packages"
            )
        if python_version is not None:
            raise EnvironmentError_(
                "python_version cannot be chosen per environment: steps run on the runners' "
                "Python (environments are built for it)"
            )
        return cls(pip_packages)

    def add_pip_package(self, package: str) -> None:
        self.pip_packages.append(package)


class PythonSection:
    def __init__(self) -> None:
        self.conda_dependencies = CondaDependencies()
        #: the seed's flag for "use the compute's own Python": the default environment
        self.user_managed_dependencies = False


class Environment:
    """A named, versioned set of pip requirements and environment variables."""

    def __init__(self, name: str, version: str | None = None) -> None:
        self.name = name
        self.version = version
        self.python = PythonSection()
        self.environment_variables: dict[str, str] = {}
        #: a requirements file, resolved against the step's source directory at submit
        self.requirements_file: Path | None = None

    @classmethod
    def from_pip_requirements(
        cls, name: str, file_path: str | os.PathLike[str], version: str | None = None
    ) -> Environment:
        """An environment from a requirements file, which must lie inside the source
        directory of the steps using it (it is part of their snapshot). Read at submit."""
        env = cls(name, version)
        env.requirements_file = Path(file_path)
        return env

    @classmethod
    def get(cls, workspace: Workspace, name: str, version: str | None = None) -> Environment:
        """A registered environment (the latest version when ``version`` is None)."""
        from urllib.parse import quote

        info = workspace.client.get(f"/environments/{quote(name)}", version=version)
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
        if self.requirements_file is not None:
            raise EnvironmentError_(
                f"environment {self.name!r} reads {self.requirements_file} at submit, relative "
                "to a step's source directory; register a definition with pip_packages instead"
            )
        body = self.definition().model_dump(mode="json")
        body["version"] = self.version  # None: the server numbers a changed definition
        info = workspace.client.post("/environments", body)
        registered = self._from_definition(EnvironmentDefinition.model_validate(info["definition"]))
        self.version = registered.version
        return registered

    def definition(self, source_directory: Path | None = None) -> EnvironmentDefinition:
        """The submitted form; reads the requirements file (inside ``source_directory``)."""
        requirements = list(self.python.conda_dependencies.pip_packages)
        if self.requirements_file is not None:
            requirements += self._read_requirements(source_directory)
        try:
            return EnvironmentDefinition(
                name=self.name,
                version=self.version or "1",
                pip_requirements=requirements,
                env_vars=dict(self.environment_variables),
            )
        except ValidationError as exc:
            problems = "; ".join(e["msg"] for e in exc.errors())
            raise EnvironmentError_(f"environment {self.name!r}: {problems}") from None

    def _read_requirements(self, source_directory: Path | None) -> builtins.list[str]:
        assert self.requirements_file is not None
        if source_directory is None:
            raise EnvironmentError_(
                f"environment {self.name!r}: its requirements file is read relative to a "
                "step's source directory; use it through a step"
            )
        root = source_directory.resolve()
        path = (root / self.requirements_file).resolve()
        if not path.is_relative_to(root):
            raise EnvironmentError_(
                f"environment {self.name!r}: requirements file {self.requirements_file} is "
                f"outside the step's source directory {root} (its snapshot); move it inside"
            )
        try:
            text = path.read_text()
        except OSError as exc:
            raise EnvironmentError_(
                f"environment {self.name!r}: cannot read requirements file {path}: {exc}"
            ) from None
        try:
            return parse_requirements_text(text)
        except ValueError as exc:
            raise EnvironmentError_(f"environment {self.name!r}: {path}: {exc}") from None

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"


class RunConfiguration:
    """The seed's run configuration: here, the environment a step uses."""

    def __init__(self, environment: Environment | None = None) -> None:
        self.environment = environment
