"""Each example DAG runs end to end against the local OSS server, OpenBao and real oss2 readers."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import oss2
import pendulum
import pytest

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from tests.dags.conftest import run_dag
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK, seed


def stored(services: dict[str, Any], key: str) -> Any:
    return services["oss"].stored_object(TEST_BUCKET, key)


def objects_under(prefix: str) -> list[str]:
    return list(EncryptedOSSHook("oss_default").list_keys(prefix, TEST_BUCKET))


def test_encrypted_transfer_round_trips_files_through_ciphertext_at_rest(
    dagbag: Any, osscse_services: dict[str, Any], tmp_path: Path
) -> None:
    files = seed.write_input_files(tmp_path / "in")
    run_dag(
        dagbag,
        "encrypted_transfer",
        run_conf={"input_dir": str(tmp_path / "in"), "output_dir": str(tmp_path / "out"), "bucket": TEST_BUCKET},
    )
    keys = objects_under("transfer/")
    assert len(keys) == len(files)
    for key in keys:
        name = key.split("/", 2)[2]
        at_rest = stored(osscse_services, key)
        assert at_rest.data != files[name]
        assert at_rest.metadata["x-oss-meta-client-side-encryption-wrap-alg"] == "VAULT/TRANSIT"
        assert EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK).read(key, TEST_BUCKET) == files[name]


def test_compliance_export_writes_one_encrypted_object_per_logical_date(
    dagbag: Any, osscse_services: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "orders.db"
    seed.create_sqlite_orders(db, seed.order_rows(dt.date(2024, 1, 1), 3, per_day=5))
    monkeypatch.setenv("AIRFLOW_CONN_OSSCSE_EXPORT_DB", seed.sqlite_connection_json(db))
    # dag.test() makes a manual run, whose data interval is the last whole day before the logical
    # date: exactly what the scheduler's run for that day covers.
    for day in (2, 3, 4):
        run_dag(
            dagbag,
            "compliance_export",
            logical_date=pendulum.datetime(2024, 1, day, tz="UTC"),
            run_conf={"bucket": TEST_BUCKET},
        )
    keys = sorted(objects_under("exports/orders/"))
    assert keys == [f"exports/orders/2024-01-0{d}.csv" for d in (1, 2, 3)]
    hook = EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK)
    for d, key in enumerate(keys, start=1):
        lines = hook.read(key, TEST_BUCKET).decode().splitlines()
        assert len(lines) == 6 and all(f"2024-01-0{d} " in line for line in lines[1:])
        assert stored(osscse_services, key).data != hook.read(key, TEST_BUCKET)


def test_compliance_export_triggered_without_a_logical_date_exports_the_last_whole_day(
    dagbag: Any, osscse_services: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3's ``airflow dags trigger`` and the UI's Trigger button make runs without a logical
    date, hence without a data interval: the export falls back to the last whole UTC day before the
    run (what a scheduled run made at that moment would cover) instead of ``UndefinedError``."""
    yesterday = pendulum.now("UTC").date() - dt.timedelta(days=1)
    db = tmp_path / "orders.db"
    # Rows the day before and the day itself (today's are not exported: the day is not over).
    seed.create_sqlite_orders(db, seed.order_rows(yesterday - dt.timedelta(days=1), 3, per_day=5))
    monkeypatch.setenv("AIRFLOW_CONN_OSSCSE_EXPORT_DB", seed.sqlite_connection_json(db))
    run = run_dag(dagbag, "compliance_export", logical_date=None, run_conf={"bucket": TEST_BUCKET})
    assert run.logical_date is None and run.data_interval_start is None  # the case being proven
    key = f"exports/orders/{yesterday.isoformat()}.csv"
    assert key in objects_under("exports/orders/")
    lines = EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK).read(key, TEST_BUCKET).decode().splitlines()
    assert len(lines) == 6 and all(f"{yesterday.isoformat()} " in line for line in lines[1:])
    assert stored(osscse_services, key).metadata["x-oss-meta-export-day"] == yesterday.isoformat()


def test_vault_kv_etl_is_rsa_wrapped_readable_by_the_decrypt_token_and_by_oss2(
    dagbag: Any, osscse_services: dict[str, Any], tmp_path: Path
) -> None:
    run = run_dag(dagbag, "vault_key_custody_etl", run_conf={"bucket": TEST_BUCKET, "work_dir": str(tmp_path)})
    (key,) = objects_under("etl/customer_totals/")
    at_rest = stored(osscse_services, key)
    assert at_rest.metadata["x-oss-meta-client-side-encryption-wrap-alg"] == "RSA/NONE/PKCS1Padding"
    plaintext = next(tmp_path.rglob("customer_totals.csv")).read_bytes()
    assert at_rest.data != plaintext and plaintext.startswith(b"customer,total_cents")

    # The official SDK decrypts it with the same key pair (as stored in Vault KV).
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(osscse_services["kv_private_pem"], password=None)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    server = osscse_services["oss"]
    # Built as oss2's docs show, without a mat_desc: the DAG configures none, so the object has none.
    assert "x-oss-meta-client-side-encryption-matdesc" not in at_rest.metadata
    provider = oss2.crypto.RsaProvider(
        key_pair={"private_key": private_pem.decode(), "public_key": public_pem.decode()}
    )
    crypto = oss2.CryptoBucket(
        oss2.AuthV4(server.access_key_id, server.access_key_secret),
        server.endpoint,
        TEST_BUCKET,
        crypto_provider=provider,
        region=server.region,
    )
    assert crypto.get_object(key).read() == plaintext
    compare = next(ti for ti in run.get_task_instances() if ti.task_id == "compare")
    assert compare.state == "success"
    assert compare.xcom_pull(task_ids="compare")["integrity"] == "verified"  # the default policy: require


def test_cmk_rotation_moves_old_objects_to_the_new_version_and_they_still_decrypt(
    dagbag: Any, osscse_services: dict[str, Any]
) -> None:
    hook = EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK)
    payloads = {f"rotation/{i}.txt": json.dumps({"n": i}).encode() for i in range(3)}
    for key, data in payloads.items():
        hook.upload([data], key, TEST_BUCKET)
    before = {hook.inspect(k, TEST_BUCKET).key_version for k in payloads}
    run = run_dag(dagbag, "cmk_rotation", run_conf={"bucket": TEST_BUCKET, "prefix": "rotation/"})
    # The rewrap is mapped (.partial().expand()) over listing shards of 2 objects (the DAG's default
    # objects_per_shard): one successful task instance per shard, not per object.
    mapped = [ti for ti in run.get_task_instances() if ti.task_id == "rewrap"]
    assert sorted(ti.map_index for ti in mapped) == list(range(-(-len(payloads) // 2)))
    assert {ti.state for ti in mapped} == {"success"}
    latest = osscse_services["vault"].secrets.transit.read_key(name="osscse-demo", mount_point="transit")["data"][
        "latest_version"
    ]
    for key, data in payloads.items():
        info = hook.inspect(key, TEST_BUCKET)
        assert info.key_version == f"v{latest}" and info.key_version not in before
        assert hook.read(key, TEST_BUCKET) == data
        assert stored(osscse_services, key).data != data
