"""``EncryptedOSSInventoryOperator`` (issue 13): a report file of one record per object, a small
summary as the XCom result, and a failed task for what an audit would flag; against the local OSS
server and OpenBao, without a key-service call (its CMK references cannot even be resolved).
"""

from __future__ import annotations

import csv
import json
import uuid
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowException

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.operators.inventory import EncryptedOSSInventoryOperator
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK, seed

#: A CMK reference whose connection does not exist: resolving it (a key-service call) would fail.
UNREACHABLE_CMK = "vault-transit://no_such_connection/transit/none"


class TaskInstanceXCom:
    """What ``execute`` reaches of the task instance in its context: ``xcom_push``, recorded."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.fixture
def prefix(osscse_services: dict[str, Any]) -> str:
    """Two Transit-encrypted objects (one of them on a rotated-away version) and a plaintext one."""
    name = f"ops/inventory/{uuid.uuid4().hex[:10]}/"
    transit = f"osscse-inventory-{uuid.uuid4().hex[:8]}"
    seed.ensure_transit_key(osscse_services["vault"], transit)
    cmk = f"vault-transit://vault_default/transit/{transit}"
    EncryptedOSSHook("oss_default", cmk=cmk).upload([b"old version" * 10], f"{name}a.bin", TEST_BUCKET)
    osscse_services["vault"].secrets.transit.rotate_key(name=transit, mount_point="transit")
    EncryptedOSSHook("oss_default", cmk=cmk).upload([b"new version" * 10], f"{name}b.bin", TEST_BUCKET)
    osscse_services["bucket"].put_object(f"{name}c.txt", b"plain")
    return name


def identity_of(prefix: str) -> str:
    return EncryptedOSSHook("oss_default").inspect(f"{prefix}a.bin", TEST_BUCKET).cmk or ""


def test_writes_the_report_and_returns_only_the_summary_without_a_key_service(prefix: str, tmp_path: Path) -> None:
    report = tmp_path / "inventory.jsonl"
    op = EncryptedOSSInventoryOperator(
        task_id="inventory",
        prefix=prefix,
        bucket=TEST_BUCKET,
        report_path=str(report),
        concurrency=2,
        decrypt_cmks=[UNREACHABLE_CMK],
    )
    result = op.execute({})
    assert op.hook._cmk_cache == {}  # noqa: SLF001 - no CMK was resolved, so no key service reached
    identity = identity_of(prefix)
    assert result["all"] == {"objects": 3, "bytes": 110 + 110 + 5}
    assert result["plaintext"] == {"objects": 1, "bytes": 5} and result["untagged"]["objects"] == 0
    assert result["by_cmk"][identity]["versions"] == {
        "v1": {"objects": 1, "bytes": 110},
        "v2": {"objects": 1, "bytes": 110},
    }
    assert result["report_path"] == str(report) and result["errors"] == 0
    assert prefix + "a.bin" not in json.dumps(result)  # counts, not rows
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["key"].removeprefix(prefix), r["key_version"]) for r in rows] == [
        ("a.bin", "v1"),
        ("b.bin", "v2"),
        ("c.txt", None),
    ]


def test_fails_on_plaintext_and_stale_objects_after_writing_the_report_and_pushing_the_summary(
    prefix: str, tmp_path: Path
) -> None:
    report = tmp_path / "inventory.csv"
    op = EncryptedOSSInventoryOperator(
        task_id="audit",
        prefix=prefix,
        bucket=TEST_BUCKET,
        report_path=str(report),
        report_format="csv",
        current_versions={identity_of(prefix): "2"},
        fail_on_plaintext=True,
        fail_on_stale=True,
    )
    ti = TaskInstanceXCom()
    with pytest.raises(AirflowException, match=r"1 plaintext object\(s\); 1 object\(s\) on a CMK version"):
        op.execute({"ti": ti})  # type: ignore[arg-type]
    summary = ti.pushed["inventory_summary"]
    assert summary["stale"] == {"objects": 1, "bytes": 110} and summary["plaintext"]["objects"] == 1
    with report.open(newline="") as table:
        assert [row["key"].removeprefix(prefix) for row in csv.DictReader(table)] == ["a.bin", "b.bin", "c.txt"]


def test_a_clean_prefix_passes_every_check(osscse_services: dict[str, Any]) -> None:
    name = f"ops/inventory-clean/{uuid.uuid4().hex[:10]}/"
    EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK).upload([b"x"], f"{name}x.bin", TEST_BUCKET)
    result = EncryptedOSSInventoryOperator(
        task_id="audit", prefix=name, bucket=TEST_BUCKET, fail_on_plaintext=True, fail_on_untagged=True
    ).execute({})
    assert result["encrypted"] == {"objects": 1, "bytes": 1} and result["report_path"] is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"report_format": "xml"}, "format must be one of"),
        ({"concurrency": 0}, "concurrency must be"),
        ({"concurrency": 65}, "concurrency must be"),
        ({"fail_on_stale": True}, "fail_on_stale needs current_versions"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncryptedOSSInventoryOperator(task_id="bad", prefix="a/", **arguments)


def test_prefix_bucket_report_path_and_current_versions_are_templated_and_mappable() -> None:
    fields = EncryptedOSSInventoryOperator.template_fields
    assert {"prefix", "bucket", "report_path", "current_versions", "oss_conn_id"} <= set(fields)
    with DAG("inventory_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
        mapped = EncryptedOSSInventoryOperator.partial(task_id="inv").expand(prefix=["logs/2024/", "logs/2025/"])
    assert mapped.expand_input.value == {"prefix": ["logs/2024/", "logs/2025/"]}
