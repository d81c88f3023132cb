"""What operators expose to people with UI access carries no key material and no secret.

XCom return values, the rendered template fields (what the UI's "Rendered Template" tab shows),
OpenLineage facets and the sensor trigger's ``serialize()`` kwargs (stored in the metadata DB) are
collected from real runs against the local services; then every object the run created is unwrapped
test-side and its data key and IV (all encodings), the tokens, the secrets and the PEM lines are
looked for in all of it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from airflow_provider_osscse.operators.local_to_encrypted_oss import LocalFilesystemToEncryptedOSSOperator
from airflow_provider_osscse.operators.oss_to_encrypted_oss import OSSToEncryptedOSSOperator
from airflow_provider_osscse.operators.rewrap import EncryptedOSSRewrapOperator
from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator
from airflow_provider_osscse.sensors.encrypted_oss_key import EncryptedOSSKeySensor
from tests.operators.fixtures import seed

from .conftest import BUCKET, SecurityEnv, leaked, object_content_key, secret_forms

#: A context with the values the templates below use (rendering needs no DAG run for these).
CONTEXT: dict[str, Any] = {"ds": "2024-01-01", "ds_nodash": "20240101", "params": {}}


def _rendered(op: Any) -> str:
    """Render the operator's template fields with ``CONTEXT``; their values as the UI would show them."""
    op.render_template_fields(CONTEXT)
    return json.dumps({name: repr(getattr(op, name)) for name in op.template_fields})


def _lineage(op: Any) -> str:
    """The OpenLineage facets as JSON-ish text (inputs, outputs and job facets)."""
    lineage = op.get_openlineage_facets_on_complete(None)
    return repr(lineage) + repr(getattr(lineage, "job_facets", {}))


def test_transfer_operators_expose_only_names_in_xcom_rendered_fields_and_lineage(
    security_env: SecurityEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transit, kv, kms = (security_env.cmks[k] for k in ("vault-transit", "vault-kv", "kms"))
    exposed: list[str] = []
    objects: list[tuple[str, str]] = []  # (key, CMK that now wraps it)

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "orders.csv").write_bytes(b"id,amount\n1,10\n")
    up = LocalFilesystemToEncryptedOSSOperator(
        task_id="up",
        source_path=str(tmp_path / "in") + "/*.csv",
        dest_key="ops/{{ ds_nodash }}/",
        dest_bucket=BUCKET,
        oss_conn_id="oss_sec",
        cmk=transit,
        metadata={"run": "{{ ds }}"},
    )
    exposed += [_rendered(up), json.dumps(up.execute(CONTEXT)), _lineage(up)]
    objects.append(("ops/20240101/orders.csv", transit))

    down = EncryptedOSSToLocalFilesystemOperator(
        task_id="down",
        source_key="ops/{{ ds_nodash }}/orders.csv",
        dest_path=str(tmp_path / "out") + "/",
        source_bucket=BUCKET,
        oss_conn_id="oss_sec",
        decrypt_cmks=[transit],
        integrity="require",
    )
    exposed += [_rendered(down), json.dumps(down.execute(CONTEXT)), _lineage(down)]
    assert (tmp_path / "out" / "orders.csv").read_bytes() == b"id,amount\n1,10\n"

    security_env.oss.overwrite_stored(BUCKET, "plain/{}.csv".format(CONTEXT["ds"]), b"id\n1\n")
    enc = OSSToEncryptedOSSOperator(
        task_id="enc",
        source_key="plain/{{ ds }}.csv",
        dest_key="enc/{{ ds }}.csv",
        source_bucket=BUCKET,
        dest_bucket=BUCKET,
        source_oss_conn_id="oss_sec",
        cmk=kv,
        delete_source=True,
    )
    exposed += [_rendered(enc), json.dumps(enc.execute(CONTEXT)), _lineage(enc)]
    objects.append(("enc/2024-01-01.csv", kv))

    db = tmp_path / "orders.db"
    seed.create_sqlite_orders(db, seed.order_rows(dt.date(2024, 1, 1), 1, per_day=3))
    monkeypatch.setenv("AIRFLOW_CONN_SEC_SQLITE", seed.sqlite_connection_json(db))
    sql = SqlToEncryptedOSSOperator(
        task_id="sql",
        conn_id="sec_sqlite",
        dest_key="export/{{ ds }}.csv",
        dest_bucket=BUCKET,
        oss_conn_id="oss_sec",
        cmk=kms,
        sql="SELECT * FROM orders WHERE created_at >= '{{ ds }}'",
    )
    exposed += [_rendered(sql), json.dumps(sql.execute(CONTEXT)), _lineage(sql)]
    objects.append(("export/2024-01-01.csv", kms))

    rewrap = EncryptedOSSRewrapOperator(
        task_id="rw",
        key="ops/{{ ds_nodash }}/",
        bucket=BUCKET,
        oss_conn_id="oss_sec",
        new_cmk=kv,
        decrypt_cmks=[transit],
    )
    exposed.append(_rendered(rewrap))
    report = rewrap.execute(CONTEXT)
    exposed.append(json.dumps(report))
    assert report["counts"] == {"rewrapped": 1}
    objects[0] = ("ops/20240101/orders.csv", kv)

    forms = list(security_env.static_forms())
    for key, cmk in objects:
        forms += secret_forms(*object_content_key(security_env, key, cmk))
    text = "\n".join(exposed)
    assert "oss://" in text and leaked(text, forms) == []
    assert "vault:v" not in text and "client-side-encryption-key" not in text


def test_rewrap_failure_report_in_xcom_quotes_no_key_material(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    """A rewrap that fails (the object's wrapped IV is corrupt, so Vault decrypts only the key) puts
    ``type: message`` of the error into the report: that text must not carry the decrypted key."""
    transit = security_env.cmks["vault-transit"]
    key = "rewrap-fail/obj"
    make_hook("vault-transit").upload(iter([b"payload"]), key)
    forms = secret_forms(*object_content_key(security_env, key, transit)) + security_env.static_forms()
    stored = security_env.oss.stored_object(BUCKET, key)
    name = "x-oss-meta-client-side-encryption-start"
    import base64

    prefix, body = base64.b64decode(stored.metadata[name]).rsplit(b":", 1)
    raw = bytearray(base64.b64decode(body))
    raw[-1] ^= 1
    security_env.oss.overwrite_stored(
        BUCKET,
        key,
        metadata={**stored.metadata, name: base64.b64encode(prefix + b":" + base64.b64encode(bytes(raw))).decode()},
    )
    report = EncryptedOSSRewrapOperator(
        task_id="rw",
        key="rewrap-fail/",
        bucket=BUCKET,
        oss_conn_id="oss_sec",
        new_cmk=security_env.cmks["rsa-file"],
        decrypt_cmks=[transit],
        fail_on_error=False,
    ).execute(CONTEXT)
    assert report["counts"] == {"failed": 1} and "KeyUnwrapError" in report["failures"][0]["error"]
    assert leaked(json.dumps(report), forms) == []


def test_sensor_xcom_rendered_fields_and_trigger_kwargs_carry_no_secrets(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    """The deferrable sensor defers with a trigger whose kwargs are names and expectations only;
    the trigger's event and the sensor's XCom list identities, never keys."""
    from airflow.sdk.exceptions import TaskDeferred

    transit = security_env.cmks["vault-transit"]
    sensor = EncryptedOSSKeySensor(
        task_id="wait",
        bucket_key="sensed/{{ ds }}/",
        bucket_name=BUCKET,
        oss_conn_id="oss_sec",
        expected_cmk=transit,
        expected_wrap_alg="VAULT/TRANSIT",
        require_integrity_tag=True,
        deferrable=True,
        poke_interval=0.05,
        timeout=30,
    )
    rendered = _rendered(sensor)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(CONTEXT)
    classpath, kwargs = deferred.value.trigger.serialize()
    make_hook("vault-transit").upload(iter([b"sensed"]), "sensed/2024-01-01/a.csv")

    async def first_event() -> Any:
        async for event in deferred.value.trigger.run():
            return event.payload
        raise AssertionError("the trigger finished without an event")

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=20))
    assert event["status"] == "success"
    xcom = sensor.execute_complete(CONTEXT, event)
    forms = secret_forms(*object_content_key(security_env, "sensed/2024-01-01/a.csv", transit))
    forms += security_env.static_forms()
    text = "\n".join([rendered, classpath, json.dumps(kwargs), json.dumps(event), json.dumps(xcom)])
    assert xcom[0]["cmk"] == "vault-transit:transit/osscse-security" and leaked(text, forms) == []
    assert set(kwargs) <= {
        "bucket_key",
        "bucket_name",
        "oss_conn_id",
        "wildcard_match",
        "expected_cmk",
        "expected_wrap_alg",
        "require_integrity_tag",
        "fail_on_mismatch",
        "poll_interval",
    }
