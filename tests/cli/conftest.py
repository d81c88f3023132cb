"""CLI tests use the shared transfer fixtures."""

from tests.transfer_fixtures import (  # noqa: F401 - pytest fixtures, used by name in this folder  # noqa: F401 - re-exported for tests
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
