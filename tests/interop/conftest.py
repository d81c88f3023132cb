"""Interop tests use the shared transfer fixtures (imported here, where pytest registers them)."""

from tests.transfer_fixtures import (  # noqa: F401 - pytest fixtures, used by name in this folder
    oss_env,
    other_rsa_ref,
    rsa_ref,
)
