"""Python environment definitions: what a step needs installed, as the user declares it.

A definition is only the request; the image builder locks it (exact versions with hashes) and
names the result by a digest of the lock, so two builds of one name that resolved differently
never share an identity. Validation here keeps pip options out of requirement lines: an
``--index-url`` or ``-e`` line would let a definition redirect the build to another index or a
local path, which the lock and its digest could not describe.
"""

from __future__ import annotations

import hashlib
import json
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ENVIRONMENT_NAME_PATTERN",
    "ENV_VAR_PATTERN",
    "RESERVED_ENV_PREFIX",
    "EnvironmentDefinition",
    "check_requirement_line",
    "parse_requirements_text",
]

ENVIRONMENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
RESERVED_ENV_PREFIX = "HEADRACE_"

_NAME = re.compile(ENVIRONMENT_NAME_PATTERN)
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}$")
_ENV_VAR = re.compile(ENV_VAR_PATTERN)


def check_requirement_line(line: str) -> str:
    """Return ``line`` stripped if it is one plain requirement, else raise ``ValueError``."""
    if "\n" in line or "\r" in line:
        raise ValueError(f"requirement {line!r} must not contain a line break")
    stripped = line.strip()
    if not stripped:
        raise ValueError("a requirement line must not be empty")
    if stripped.startswith("-"):
        raise ValueError(
            f"requirement {stripped!r} is a pip option; options (--index-url, -e, -r, ...) "
            "are not allowed, list plain requirements only"
        )
    return stripped


class EnvironmentDefinition(BaseModel):
    """A named set of pip requirements plus environment variables for a step's process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str = "1"
    pip_requirements: list[str]
    env_vars: dict[str, str] = {}
    #: the image the step's container builds on (``Environment.docker.base_image``); None:
    #: the builder's default. Recorded and used as the Containerfile's ``FROM``.
    base_image: str | None = Field(default=None, min_length=1, max_length=512)

    @property
    def key(self) -> str:
        """``name@version:<16 hex>``: names the definition by its content, so a step spec
        pins exactly what it asked for and two different definitions never share a key."""
        # exclude_none: fields added later (base_image) leave the keys of older definitions
        document = self.model_dump(mode="json", exclude_none=True)
        canonical = json.dumps(document, sort_keys=True).encode()
        return f"{self.name}@{self.version}:{hashlib.sha256(canonical).hexdigest()[:16]}"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                f"environment name {value!r} must match {ENVIRONMENT_NAME_PATTERN} "
                "(letters, digits, '.', '_', '-'; at most 128 characters)"
            )
        return value

    @field_validator("base_image")
    @classmethod
    def _base_image(cls, value: str | None) -> str | None:
        if value is not None and not _IMAGE.fullmatch(value):
            raise ValueError(
                f"base image {value!r} must be an image reference such as "
                "'python:3.11-slim' or 'registry/repo:tag' (no spaces or control characters)"
            )
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.fullmatch(value):
            raise ValueError(f"environment version {value!r} must match {_VERSION.pattern}")
        return value

    @field_validator("pip_requirements")
    @classmethod
    def _requirements(cls, value: list[str]) -> list[str]:
        return [check_requirement_line(line) for line in value]

    @field_validator("env_vars")
    @classmethod
    def _env_vars(cls, value: dict[str, str]) -> dict[str, str]:
        for key, val in value.items():
            if not _ENV_VAR.fullmatch(key):
                raise ValueError(f"environment variable name {key!r} must match {ENV_VAR_PATTERN}")
            if key.upper().startswith(RESERVED_ENV_PREFIX):
                raise ValueError(
                    f"environment variable {key!r} is reserved: names starting with "
                    f"{RESERVED_ENV_PREFIX} are set by headrace itself"
                )
            if "\x00" in val:
                raise ValueError(f"environment variable {key!r} must not contain a NUL byte")
        return value


def parse_requirements_text(text: str) -> list[str]:
    """The requirement lines of a requirements file, without comments and blank lines.

    Option lines (``-r``, ``-e``, ``--index-url`` ...) are rejected with their line number
    rather than dropped, so a file that relied on one fails loudly instead of building
    something else.
    """
    out: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0]
        if line.lstrip().startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        if line.endswith("\\"):
            raise ValueError(
                f"line {number}: {raw.strip()!r} continues on the next line; "
                "write each requirement on one line"
            )
        if line.startswith("-"):
            raise ValueError(
                f"line {number}: {line!r} is a pip option; options (--index-url, -e, -r, "
                "--hash, ...) are not allowed in an environment's requirements"
            )
        out.append(line)
    return out
