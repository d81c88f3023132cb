"""CLI tests use the shared transfer fixtures."""

from tests.transfer_fixtures import (  # noqa: F401 - pytest fixtures, used by name in this folder
    BUCKET,
    KIB,
    PART,
    THRESHOLD,
    make_hook,
    oss_env,
    other_rsa_ref,
    rsa_ref,
    transit_ref,
)

#: Re-exported: the tests in this folder import these constants from ``.conftest``.
__all__ = ["BUCKET", "KIB", "PART", "THRESHOLD"]
