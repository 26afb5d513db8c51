"""``azureml.exceptions``: the exception types Azure ML v1 code catches.

Ported code says ``except ComputeTargetException:`` around the lookup of a compute target and
``except UserErrorException:`` around calls it expects to refuse bad input. Those clauses must
keep meaning the same thing, so headrace raises these types where Azure ML raises them (today:
``ComputeTargetException`` for an unknown or invalid compute target) and defines the rest so
that every ``except`` clause of ported code still resolves. All of them are ``HeadraceError``\\ s,
so ``except HeadraceError`` catches them as well.

Hierarchy (as in Azure ML)::

    AzureMLException
    ├── AzureMLAggregatedException
    ├── ServiceException
    └── UserErrorException
        ├── ActivityFailedException, AuthenticationException, ComputeTargetException,
        ├── DatasetTimestampMissingError, DiscoveryUrlNotFoundException,
        ├── ExperimentExecutionException, ModelNotFoundException, ModelPathNotFoundException,
        ├── ParallelRunException, ProjectSystemException, RunConfigurationException,
        ├── RunEnvironmentException, SnapshotException, TrainingException,
        └── WebserviceException, WorkspaceException, WorkspacePrivateEndpointException
"""

from __future__ import annotations

from typing import Any

from headrace.errors import HeadraceError

__all__ = [
    "ActivityFailedException",
    "AuthenticationException",
    "AzureMLAggregatedException",
    "AzureMLException",
    "ComputeTargetException",
    "DatasetTimestampMissingError",
    "DiscoveryUrlNotFoundException",
    "ExperimentExecutionException",
    "ModelNotFoundException",
    "ModelPathNotFoundException",
    "ParallelRunException",
    "ProjectSystemException",
    "RunConfigurationException",
    "RunEnvironmentException",
    "ServiceException",
    "SnapshotException",
    "TrainingException",
    "UserErrorException",
    "WebserviceException",
    "WorkspaceException",
    "WorkspacePrivateEndpointException",
]


class AzureMLException(HeadraceError):
    """Root of the Azure ML exception types; ``message`` and ``inner_exception`` as in v1."""

    def __init__(
        self, exception_message: str, inner_exception: BaseException | None = None, **kwargs: Any
    ) -> None:
        super().__init__(exception_message)
        self.message = exception_message
        self.inner_exception = inner_exception
        self.details = kwargs

    def print_stacktrace(self) -> None:
        """Print this exception's traceback, as v1's helper of the same name does."""
        import traceback

        traceback.print_exception(self)


class AzureMLAggregatedException(AzureMLException):
    """Several failures reported together."""


class ServiceException(AzureMLException):
    """The service answered with an error."""


class UserErrorException(AzureMLException):
    """The caller asked for something invalid; the message says what to change."""


class ActivityFailedException(UserErrorException):
    """A run or step failed."""


class AuthenticationException(UserErrorException):
    """Credentials were refused."""


class ComputeTargetException(UserErrorException):
    """A compute target is unknown, or its configuration is invalid.

    Raised by ``ComputeTarget(workspace, name)`` for a name the workspace does not have, which
    is how v1 code decides to create the target."""


class DatasetTimestampMissingError(UserErrorException):
    """A time-series operation on a dataset without timestamp columns."""


class DiscoveryUrlNotFoundException(UserErrorException):
    """The service discovery URL could not be found."""


class ExperimentExecutionException(UserErrorException):
    """An experiment could not be submitted or run."""


class ModelNotFoundException(UserErrorException):
    """A registered model is unknown."""


class ModelPathNotFoundException(UserErrorException):
    """A model path does not exist."""


class ParallelRunException(UserErrorException):
    """A parallel run step failed."""


class ProjectSystemException(UserErrorException):
    """A project directory is unusable."""


class RunConfigurationException(UserErrorException):
    """A run configuration is invalid."""


class RunEnvironmentException(UserErrorException):
    """A run's environment is invalid."""


class SnapshotException(UserErrorException):
    """A source directory cannot be snapshotted."""


class TrainingException(UserErrorException):
    """A training run failed."""


class WebserviceException(UserErrorException):
    """A web service operation failed."""


class WorkspaceException(UserErrorException):
    """A workspace operation failed."""


class WorkspacePrivateEndpointException(UserErrorException):
    """A workspace private endpoint operation failed."""
