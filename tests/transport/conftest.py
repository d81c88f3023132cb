"""Transport tests that go through a hook use the shared transfer fixtures."""

from tests.transfer_fixtures import (  # noqa: F401 - pytest fixtures, used by name in this folder
    make_hook,
    oss_env,
    rsa_ref,
)
