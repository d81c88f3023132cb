"""Hook tests use the shared transfer fixtures."""

from tests.transfer_fixtures import *  # noqa: F401,F403 - fixtures and constants (BUCKET, KIB, PART, ...)
from tests.transfer_fixtures import BUCKET, KIB, PART, THRESHOLD  # noqa: F401 - re-exported for tests
