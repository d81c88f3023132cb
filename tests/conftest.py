"""Suite-wide setup: an isolated AIRFLOW_HOME, no examples, the osscse pytest plugin's fixtures, and
the test tiers.

Tiers: a test that needs a local service (the OSS or KMS server, OpenBao, PostgreSQL) is marked
``services`` here, automatically, from the fixtures it uses (directly or through other fixtures);
everything else is the fast tier, ``make test-fast`` (``-m "not services and not slow"``). In that tier
a test that starts a service anyway fails at once, so the fast tier cannot quietly grow a dependency.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its configuration at import time: isolate it before anything imports airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="osscse-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
# The example DAGs run from the repository's dags/ folder (dag.test() needs them loaded from a folder).
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))


import itertools  # noqa: E402 - after the environment set-up above, on purpose
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_secrets_masker_per_test() -> Iterator[None]:
    """Each test starts like a new Airflow task process: an empty secrets masker. Without this the
    session's masker accumulates every PEM and token of hundreds of tests, and since it recompiles
    one regex of all of them per registration and applies it to every log record, later tests slow
    down by an order of magnitude."""
    yield
    if "airflow.sdk" in sys.modules:
        from airflow.sdk._shared.secrets_masker import reset_secrets_masker

        reset_secrets_masker()


# -- test tiers --------------------------------------------------------------------------------------

#: Fixtures that start a local service. A test using any of them, directly or through another fixture
#: (``item.fixturenames`` is the transitive closure, ``usefixtures`` included), is marked ``services``.
SERVICE_FIXTURES = frozenset(
    {
        # the osscse pytest plugin (airflow_provider_osscse/testing/pytest_plugin.py)
        "osscse_oss_server",
        "osscse_kms_server",
        "osscse_openbao",
        "osscse_airflow_connections",
        "postgres_server",  # tests/operators/fixtures.py
        "sts_server",  # own LocalOSSServer: tests/hooks/test_kms_sts_v1_extra.py, tests/testing/test_oss_server.py
        "published_kms",  # own LocalKMSServer: tests/keys/test_kms_key_pinning.py
        "airflow_deployment_processes",  # a real Airflow deployment: tests/deployment (also marked `deployment`)
        "deployment_metadata_db",  # its own PostgreSQL cluster: tests/deployment/conftest.py
        "celery_broker",  # its own redis-server: tests/deployment/conftest.py
    }
)

#: Tests that start a service in their own body rather than through a fixture: module -> test functions
#: (empty: the whole module). The marker belongs in those modules (``@pytest.mark.services``); until they
#: are next edited it is applied from here. The guard below names any test missing from this table.
SERVICE_TESTS: dict[str, frozenset[str]] = {
    "tests/testing/test_kms_server.py": frozenset(
        {
            "test_published_shape_re_encrypt_names_only_the_key_that_decrypted_the_original",
            "test_server_addresses_and_repr_without_the_secret",
        }
    ),
    "tests/testing/test_kms_server_cli.py": frozenset(),
    "tests/testing/test_openbao.py": frozenset({"test_stop_terminates_the_process_by_pid_and_is_idempotent"}),
    "tests/testing/test_oss_server_runtime.py": frozenset(
        {
            "test_disk_layout_holds_exact_bytes_and_survives_restart",
            "test_command_line_prints_endpoint_serves_and_exits_zero_on_sigterm",
        }
    ),
    # two nested pytest sessions, each starting the plugin's OSS and KMS servers
    "tests/testing/test_pytest_plugin_credentials.py": frozenset(
        {"test_every_session_gets_its_own_random_oss_and_kms_credentials"}
    ),
}


def needs_services(item: pytest.Item) -> bool:
    """Whether ``item`` uses a service fixture or is listed in :data:`SERVICE_TESTS`."""
    if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    module, _, test = item.nodeid.split("[", 1)[0].partition("::")
    listed = SERVICE_TESTS.get(module)
    return listed is not None and (not listed or test in listed)


#: Tests that are slow without any service (seconds each), kept out of ``make test-fast``; they still run
#: in ``make test``.
SLOW_TESTS = frozenset(
    {
        # a fresh interpreter importing all of Airflow to run `airflow providers ...` (3-5 s each)
        "tests/test_provider_registration.py::test_airflow_cli_lists_the_provider",
        "tests/test_provider_registration.py::test_airflow_cli_lists_our_hooks_by_connection_type",
    }
)


def is_slow(item: pytest.Item) -> bool:
    """Whether ``item`` is listed in :data:`SLOW_TESTS` or is an RSA-4096 case of test_local_rsa.py.

    RSA-4096 costs seconds per test: generating the key, then each load validates the private key
    once (~0.5 s) and registers every PEM line with Airflow's secrets masker, which recompiles its
    whole regex per line.
    """
    test = item.nodeid.split("[", 1)[0]
    if test in SLOW_TESTS:
        return True
    callspec = getattr(item, "callspec", None)
    return (
        test.startswith("tests/keys/test_local_rsa.py::")
        and callspec is not None
        and callspec.params.get("private_key") == 4096
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("services") is None and needs_services(item):
            item.add_marker(pytest.mark.services)
        if item.get_closest_marker("slow") is None and is_slow(item):
            item.add_marker(pytest.mark.slow)


def _service_command(args: Any) -> str | None:
    """What service a subprocess command line starts, if any (for the fast-tier guard)."""
    argv = [os.fsdecode(a) for a in ([args] if isinstance(args, (str, bytes, os.PathLike)) else args)]
    names = [os.path.basename(a) for a in argv]
    if {"initdb", "pg_ctl", "postgres"} & set(names):
        return "PostgreSQL"
    if "redis-server" in names:
        return "Redis"
    # The real OpenBao binary lives in this environment (a test's stand-in script in tmp_path does not).
    if argv and names[0] == "bao" and os.path.realpath(argv[0]).startswith(os.path.realpath(sys.prefix)):
        return "OpenBao"
    for flag, module in itertools.pairwise(argv):
        if flag == "-m" and module.startswith("airflow_provider_osscse.testing."):
            return f"python -m {module}"
    return None


@pytest.fixture(autouse=True)
def _fast_tests_start_no_services(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In a test not marked ``services``, starting the local OSS/KMS server (in process) or OpenBao,
    PostgreSQL or a server's command line (as a subprocess) fails the test and says how to fix it."""
    if request.node.get_closest_marker("services") is not None:
        yield
        return
    from airflow_provider_osscse.testing import serving

    def refuse(what: str) -> None:
        pytest.fail(
            f"{request.node.nodeid} starts {what} but is not marked 'services': take the service from a "
            "fixture listed in tests/conftest.py SERVICE_FIXTURES, or mark the test @pytest.mark.services",
            pytrace=False,
        )

    def serving_thread(self: Any, httpd: Any, name: str) -> None:
        refuse(f"a local server ({name})")

    # Popen's one place that starts the child, after its set-up (a failure there closes the pipes cleanly).
    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]  # noqa: SLF001

    def guarded_execute_child(self: subprocess.Popen[Any], args: Sequence[Any], *rest: Any) -> None:
        what = _service_command(args)
        if what is not None:
            refuse(what)
        execute_child(self, args, *rest)

    monkeypatch.setattr(serving.ServingThread, "__init__", serving_thread)
    monkeypatch.setattr(subprocess.Popen, "_execute_child", guarded_execute_child)
    yield
