"""The operators' shared base: one set of transfer arguments, one cached hook, one template-field list.

No services: constructing an operator and its hook touches no network (the oss2 client and the CMKs
are built on first use), so these run in the fast tier.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.operators.base import (
    OSSCSE_TEMPLATE_FIELDS,
    EncryptedOSSBaseOperator,
    osscse_template_fields,
)
from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from airflow_provider_osscse.operators.local_to_encrypted_oss import LocalFilesystemToEncryptedOSSOperator
from airflow_provider_osscse.operators.oss_to_encrypted_oss import OSSToEncryptedOSSOperator
from airflow_provider_osscse.operators.rewrap import EncryptedOSSRewrapOperator
from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator

CMK = "vault-transit://vault_default/transit/orders"
OLD = "vault-transit://vault_default/transit/orders-2023"
OPERATORS: list[tuple[type[EncryptedOSSBaseOperator], dict[str, Any]]] = [
    (LocalFilesystemToEncryptedOSSOperator, {"source_path": "/data/a.csv", "dest_key": "in/", "cmk": CMK}),
    (EncryptedOSSToLocalFilesystemOperator, {"source_key": "a.csv", "dest_path": "/data/out/"}),
    (OSSToEncryptedOSSOperator, {"source_key": "raw/a.csv", "cmk": CMK}),
    (SqlToEncryptedOSSOperator, {"conn_id": "db", "cmk": CMK, "sql": "SELECT 1", "dest_key": "x.csv"}),
    (EncryptedOSSRewrapOperator, {"key": "a/", "new_cmk": CMK}),
]
IDS = [cls.__name__ for cls, _ in OPERATORS]


@pytest.mark.parametrize(("operator", "kwargs"), OPERATORS, ids=IDS)
def test_every_operator_takes_the_shared_transfer_arguments_and_templates_the_shared_fields(
    operator: type[EncryptedOSSBaseOperator], kwargs: dict[str, Any]
) -> None:
    op = operator(
        task_id="t",
        **kwargs,
        decrypt_cmks=OLD,
        matdesc={"team": "orders"},
        bind_integrity_tag=False,
        multipart_threshold=5 * 2**20,
        part_size=5 * 2**20,
        max_workers=2,
    )
    assert isinstance(op, EncryptedOSSBaseOperator)
    assert set(OSSCSE_TEMPLATE_FIELDS) <= set(op.template_fields)
    assert len(op.template_fields) == len(set(op.template_fields))
    hook = op.hook
    assert hook is op.hook  # built once per task run, its clients reused
    assert OLD in hook.decrypt_cmks  # one string is one reference, not a list of characters
    assert hook.matdesc == {"team": "orders"} and hook.bind_integrity_tag is False
    assert (hook.multipart_threshold, hook.part_size, hook.max_workers) == (5 * 2**20, 5 * 2**20, 2)


def test_the_hook_is_built_from_the_rendered_fields() -> None:
    op = EncryptedOSSToLocalFilesystemOperator(
        task_id="t",
        source_key="a.csv",
        dest_path="/tmp/out/",
        oss_conn_id="oss_{{ ds_nodash }}",
        decrypt_cmks=["vault-transit://vault_default/transit/{{ ds_nodash }}"],
    )
    op.render_template_fields({"ds_nodash": "20240101"})
    assert op.hook.oss_conn_id == "oss_20240101"
    assert op.hook.decrypt_cmks == ("vault-transit://vault_default/transit/20240101",)


def test_writers_hooks_wrap_under_their_cmk_and_rewrap_under_the_target() -> None:
    up = LocalFilesystemToEncryptedOSSOperator(task_id="up", source_path="/a", dest_key="k", cmk=CMK)
    assert up.hook.cmk == CMK
    rotate = EncryptedOSSRewrapOperator(task_id="rw", key="a/", decrypt_cmks=[OLD])
    assert rotate.hook.cmk == OLD  # no new_cmk: the first decrypt CMK, onto its newest version


def test_copy_operator_reads_back_under_require_on_the_destination_connection() -> None:
    op = OSSToEncryptedOSSOperator(
        task_id="enc",
        source_key="raw/a.csv",
        cmk=CMK,
        source_oss_conn_id="oss_src",
        dest_oss_conn_id="oss_dst",
        decrypt_cmks=[OLD],
    )
    assert (op.source_hook.oss_conn_id, op.source_hook.allow_plaintext) == ("oss_src", True)
    assert op.hook.oss_conn_id == "oss_dst" and op.hook.cmk == CMK
    assert op.hook.decrypt_cmks == (CMK, OLD) and op.hook.integrity is not None
    assert op.hook.integrity.value == "require"
    with pytest.raises(TypeError, match="oss_conn_id"):
        OSSToEncryptedOSSOperator(task_id="enc2", source_key="a", cmk=CMK, oss_conn_id="x")  # type: ignore[misc]


def test_a_misspelt_integrity_policy_fails_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="requir"):
        EncryptedOSSToLocalFilesystemOperator(task_id="t", source_key="a", dest_path="/tmp/", integrity="requir")


def test_template_field_helper_puts_the_operators_own_fields_first_each_once() -> None:
    fields = osscse_template_fields("key", "oss_conn_id", "bucket")
    assert fields[:3] == ("key", "oss_conn_id", "bucket")
    assert set(fields) == {"key", "bucket", *OSSCSE_TEMPLATE_FIELDS} and len(fields) == len(set(fields))


def test_rewrap_operator_keeps_airflows_dry_run_method() -> None:
    """``dry_run=True`` is the rewrap's own option; it must not shadow ``BaseOperator.dry_run()``
    (which renders the template fields for ``airflow tasks test``-style checks)."""
    op = EncryptedOSSRewrapOperator(task_id="rw", key="a/", new_cmk=CMK, dry_run=True)
    op.dry_run()
    assert op.rewrap_dry_run is True


def test_operator_hooks_are_encrypted_oss_hooks() -> None:
    assert isinstance(EncryptedOSSRewrapOperator(task_id="rw", key="a/", new_cmk=CMK).hook, EncryptedOSSHook)
