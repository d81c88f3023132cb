"""An undefined Airflow connection is an expected failure of ``osscse``: one line, exit 1, no traceback.

Airflow's own ``AirflowNotFoundException`` (the OSS connection) and the provider's
``CmkConnectionNotFoundError`` (a CMK reference naming an undefined connection) are caught by type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.cli import main
from tests.transfer_fixtures import BUCKET


def test_an_undefined_oss_connection_is_one_line_naming_it_and_its_variable(
    oss_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["ls", f"oss://{BUCKET}/cli/", "--oss-conn-id", "no_such_oss_conn"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("osscse: ConnectionNotFoundError: ") and "'no_such_oss_conn' is not defined" in err
    assert "AIRFLOW_CONN_NO_SUCH_OSS_CONN" in err and "airflow connections add" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_a_cmk_reference_to_an_undefined_connection_is_one_line_naming_it(
    oss_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "rows.csv"
    src.write_bytes(b"id\n1\n")
    reference = "vault-transit://no_such_vault/transit/orders"
    code = main(["put", str(src), f"oss://{BUCKET}/cli/no-conn", "--cmk", reference, "--oss-conn-id", "oss_v4"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("osscse: CmkConnectionNotFoundError: ") and "'no_such_vault' is not defined" in err
    assert err.count("\n") == 1 and "Traceback" not in err
