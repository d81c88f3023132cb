"""The transfer operators against the local OSS server and OpenBao, through the real hook."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any

import oss2
import pytest

from airflow_provider_osscse.exceptions import UnsafeObjectKeyError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from airflow_provider_osscse.operators.local_to_encrypted_oss import LocalFilesystemToEncryptedOSSOperator
from airflow_provider_osscse.operators.oss_to_encrypted_oss import OSSToEncryptedOSSOperator
from airflow_provider_osscse.operators.rewrap import EncryptedOSSRewrapOperator
from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK, seed

pytestmark = pytest.mark.usefixtures("osscse_services")


def at_rest(services: dict[str, Any], key: str) -> bytes:
    """The bytes the OSS server holds at rest (not what any client returns)."""
    return services["oss"].stored_object(TEST_BUCKET, key).data


def hook() -> EncryptedOSSHook:
    return EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK, integrity="require")


def test_local_directory_is_encrypted_under_prefix_and_xcom_names_cmk_not_keys(
    tmp_path: Path, osscse_services: dict
) -> None:
    files = seed.write_input_files(tmp_path / "in")
    op = LocalFilesystemToEncryptedOSSOperator(
        task_id="up", source_path=str(tmp_path / "in"), dest_key="ops/up/", dest_bucket=TEST_BUCKET, cmk=TRANSIT_CMK
    )
    results = op.execute({})
    # The session's Transit key may have been rotated by another test: expect its newest version.
    latest = osscse_services["vault"].secrets.transit.read_key(name=TRANSIT_CMK.rsplit("/", 1)[1])["data"][
        "latest_version"
    ]
    assert sorted(r["key"] for r in results) == sorted(f"ops/up/{name}" for name in files)
    for r in results:
        name = r["key"].removeprefix("ops/up/")
        assert r["cmk"] == TRANSIT_CMK and r["wrap_alg"] == "VAULT/TRANSIT" and r["key_version"] == f"v{latest}"
        stored = at_rest(osscse_services, r["key"])
        assert stored != files[name] and len(stored) == len(files[name])
        assert hook().read(r["key"], TEST_BUCKET) == files[name]
    text = json.dumps(results)
    assert "vault:v" not in text and "client-side-encryption-key" not in text

    lineage = op.get_openlineage_facets_on_complete(None)
    assert {d.namespace for d in lineage.outputs} == {f"oss://{TEST_BUCKET}"}
    assert all(d.namespace.startswith("file://") and d.name.startswith("/") for d in lineage.inputs)
    assert sorted(d.name for d in lineage.outputs) == sorted(r["key"] for r in results)


def test_prefix_download_round_trips_and_refuses_keys_escaping_the_directory(tmp_path: Path) -> None:
    h = hook()
    h.upload([b"alpha"], "ops/down/a.txt", TEST_BUCKET)
    h.upload([b"beta"], "ops/down/sub/b.txt", TEST_BUCKET)
    op = EncryptedOSSToLocalFilesystemOperator(
        task_id="down",
        source_key="ops/down/",
        dest_path=str(tmp_path / "out"),
        source_bucket=TEST_BUCKET,
        decrypt_cmks=[TRANSIT_CMK],
        integrity="require",
    )
    results = op.execute({})
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "out" / "sub" / "b.txt").read_bytes() == b"beta"
    assert {r["integrity"] for r in results} == {"verified"}

    h.upload([b"evil"], "ops/evil/../../escape.txt", TEST_BUCKET)
    bad = EncryptedOSSToLocalFilesystemOperator(
        task_id="bad",
        source_key="ops/evil/",
        dest_path=str(tmp_path / "out2"),
        source_bucket=TEST_BUCKET,
        decrypt_cmks=[TRANSIT_CMK],
    )
    with pytest.raises(UnsafeObjectKeyError, match=re.escape("escape.txt")):
        bad.execute({})
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out2").exists()


def test_plaintext_objects_are_encrypted_verified_and_source_deleted_only_after(osscse_services: dict) -> None:
    plain: oss2.Bucket = osscse_services["bucket"]
    plain.put_object("ops/plain/one.csv", b"id\n1\n")
    plain.put_object("ops/plain/two.csv", b"id\n2\n" * 1000)
    op = OSSToEncryptedOSSOperator(
        task_id="enc",
        source_key="ops/plain/",
        dest_key="ops/enc/",
        source_bucket=TEST_BUCKET,
        dest_bucket=TEST_BUCKET,
        cmk=TRANSIT_CMK,
        delete_source=True,
    )
    results = op.execute({})
    assert [(r["key"], r["verified"], r["source_deleted"]) for r in results] == [
        ("ops/enc/one.csv", True, True),
        ("ops/enc/two.csv", True, True),
    ]
    assert not plain.object_exists("ops/plain/one.csv")
    assert hook().read("ops/enc/two.csv", TEST_BUCKET) == b"id\n2\n" * 1000
    assert at_rest(osscse_services, "ops/enc/two.csv") != b"id\n2\n" * 1000
    again = OSSToEncryptedOSSOperator(
        task_id="again",
        source_key="ops/enc/",
        dest_key="ops/enc2/",
        source_bucket=TEST_BUCKET,
        dest_bucket=TEST_BUCKET,
        cmk=TRANSIT_CMK,
    )
    assert again.execute({}) == []  # already encrypted: skipped, never double-encrypted


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_sqlite_export_streams_rows_into_one_encrypted_object(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime as dt

    db = tmp_path / "orders.db"
    seed.create_sqlite_orders(db, seed.order_rows(dt.date(2024, 1, 1), 2, per_day=4))
    monkeypatch.setenv("AIRFLOW_CONN_EXPORT_SQLITE", seed.sqlite_connection_json(db))
    op = SqlToEncryptedOSSOperator(
        task_id="export",
        conn_id="export_sqlite",
        export_format=fmt,
        batch_size=3,
        dest_bucket=TEST_BUCKET,
        dest_key=f"ops/export/2024-01-01.{fmt}",
        cmk=TRANSIT_CMK,
        sql="SELECT id, customer, amount, created_at FROM orders WHERE created_at < '2024-01-02' ORDER BY id",
    )
    result = op.execute({})
    assert result["rows"] == 4 and result["columns"] == ["id", "customer", "amount", "created_at"]
    data = hook().read(result["key"], TEST_BUCKET)
    if fmt == "csv":
        assert data.decode().splitlines()[0] == "id,customer,amount,created_at" and len(data.splitlines()) == 5
    elif fmt == "jsonl":
        assert [json.loads(x)["id"] for x in data.splitlines()] == [1, 2, 3, 4]
    else:
        import io

        import pyarrow.parquet as pq

        assert pq.read_table(io.BytesIO(data)).column("id").to_pylist() == [1, 2, 3, 4]
    lineage = op.get_openlineage_facets_on_complete(None)
    assert lineage.outputs[0].namespace == f"oss://{TEST_BUCKET}" and lineage.inputs[0].name.endswith("orders")


def test_postgres_export_writes_the_same_csv(postgres_server: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    import psycopg2

    conn = psycopg2.connect(
        host=postgres_server["host"], port=postgres_server["port"], user="osscse", dbname="postgres"
    )
    with conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS orders")
        cur.execute(
            "CREATE TABLE orders (id int primary key, customer text, amount numeric(10,2), created_at timestamp)"
        )
        cur.executemany(
            "INSERT INTO orders VALUES (%s, %s, %s, %s)", seed.order_rows(dt.date(2024, 1, 1), 2, per_day=3)
        )
    conn.close()
    monkeypatch.setenv(
        "AIRFLOW_CONN_EXPORT_PG",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": postgres_server["host"],
                "port": postgres_server["port"],
                "login": "osscse",
                "schema": "postgres",
            }
        ),
    )
    op = SqlToEncryptedOSSOperator(
        task_id="export_pg",
        conn_id="export_pg",
        dest_bucket=TEST_BUCKET,
        dest_key="ops/export/pg.csv",
        cmk=TRANSIT_CMK,
        sql="SELECT id, customer, amount, created_at FROM orders WHERE created_at >= '2024-01-02 00:00:00' ORDER BY id",
    )
    result = op.execute({})
    lines = hook().read(result["key"], TEST_BUCKET).decode().splitlines()
    assert result["rows"] == 3 and lines[0] == "id,customer,amount,created_at"
    assert lines[1].startswith("4,") and "2024-01-02T" in lines[1]


def test_rewrap_dry_run_then_rotation_then_rerun_is_already_current(osscse_services: dict) -> None:
    h = hook()
    for i in range(2):
        h.upload([f"object {i}".encode()], f"ops/rotate/{i}.txt", TEST_BUCKET)
    name = f"osscse-rotate-{uuid.uuid4().hex[:8]}"  # its own key: this test rotates it
    seed.ensure_transit_key(osscse_services["vault"], name)
    cmk = f"vault-transit://vault_default/transit/{name}"
    rot = EncryptedOSSHook("oss_default", cmk=cmk)
    for i in range(2):
        rot.upload([f"rotated {i}".encode()], f"ops/rotate2/{i}.txt", TEST_BUCKET)
    osscse_services["vault"].secrets.transit.rotate_key(name=name, mount_point="transit")

    def run(dry_run: bool) -> dict:
        return EncryptedOSSRewrapOperator(
            task_id="rw", key="ops/rotate2/", bucket=TEST_BUCKET, decrypt_cmks=[cmk], dry_run=dry_run
        ).execute({})

    assert run(True)["counts"] == {"would-rewrap": 2}
    report = run(False)
    assert report["counts"] == {"rewrapped": 2} and report["to_versions"] == {"v2": 2} and report["failures"] == []
    assert run(False)["counts"] == {"already-current": 2}
    assert rot.inspect("ops/rotate2/1.txt", TEST_BUCKET).key_version == "v2"
    assert rot.read("ops/rotate2/1.txt", TEST_BUCKET) == b"rotated 1"
    assert (
        hashlib.sha256(at_rest(osscse_services, "ops/rotate2/0.txt")).digest() != hashlib.sha256(b"rotated 0").digest()
    )
