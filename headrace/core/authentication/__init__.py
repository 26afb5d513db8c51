"""``azureml.core.authentication``: the header a REST call to an endpoint needs.

In the seed, ``InteractiveLoginAuthentication().get_authentication_header()`` gives an AAD
bearer header; here the bearer is the workspace's API token (``HEADRACE_TOKEN`` or the
workspace config's ``token``).
"""

from __future__ import annotations

import os

from headrace.errors import ConfigError

__all__ = ["InteractiveLoginAuthentication", "TokenAuthentication"]


class TokenAuthentication:
    """A headrace API token; ``token=None`` reads the workspace config's."""

    def __init__(self, token: str | None = None, config: str | os.PathLike[str] | None = None):
        if token is None:
            from headrace.workspace import Workspace

            token = Workspace.from_config(config).token
        if not token:
            raise ConfigError(
                "no API token: set HEADRACE_TOKEN, or create one with `headrace tokens create`"
            )
        self._token = token

    def get_authentication_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}


class InteractiveLoginAuthentication(TokenAuthentication):
    """The seed's name for "the current user's credentials": the local config's token."""
