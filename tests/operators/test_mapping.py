"""Every operator can be mapped (``.partial().expand()``) over the field a user shards by.

The mapped run itself is proven end to end by the ``cmk_rotation`` example DAG (one rewrap task
instance per object); here each operator class is expanded over its natural key.
"""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from airflow_provider_osscse.operators.local_to_encrypted_oss import LocalFilesystemToEncryptedOSSOperator
from airflow_provider_osscse.operators.oss_to_encrypted_oss import OSSToEncryptedOSSOperator
from airflow_provider_osscse.operators.rewrap import EncryptedOSSRewrapOperator
from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator

CMK = "vault-transit://vault_default/transit/orders"
CASES = [
    (
        LocalFilesystemToEncryptedOSSOperator,
        {"dest_key": "in/", "cmk": CMK},
        "source_path",
        ["/data/a.csv", "/data/b.csv"],
    ),
    (EncryptedOSSToLocalFilesystemOperator, {"dest_path": "/data/out/"}, "source_key", ["a.csv", "b.csv"]),
    (OSSToEncryptedOSSOperator, {"cmk": CMK}, "source_key", ["raw/a.csv", "raw/b.csv"]),
    (SqlToEncryptedOSSOperator, {"conn_id": "db", "cmk": CMK, "sql": "SELECT 1"}, "dest_key", ["x/1.csv", "x/2.csv"]),
    (EncryptedOSSRewrapOperator, {"new_cmk": CMK}, "key", ["a/", "b/"]),
]


@pytest.mark.parametrize(("operator", "partial", "field", "values"), CASES, ids=lambda c: getattr(c, "__name__", None))
def test_operator_expands_over_its_shard_field_which_stays_templated(operator, partial, field, values) -> None:
    with DAG("mapping_probe", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC")):
        mapped = operator.partial(task_id="mapped", **partial).expand(**{field: values})
    assert mapped.expand_input.value == {field: values}
    assert field in operator.template_fields
