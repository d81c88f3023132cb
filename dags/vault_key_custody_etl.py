"""Extract -> transform -> encrypted load, with the CMK an RSA key pair held in Vault KV.

The writer and the reader hold different Vault tokens: ``load`` encrypts through ``vault_default``,
and ``verify_with_decrypt_token`` decrypts through ``vault_decrypt``, a connection whose token may
only read the key (a Vault policy limited to that KV path), as a downstream consumer would.

| setting | environment | embedded default |
|---|---|---|
| writer CMK | ``OSSCSE_KV_CMK`` | ``vault-kv://vault_default/secret/osscse/etl-rsa`` |
| reader CMK | ``OSSCSE_KV_DECRYPT_CMK`` | ``vault-kv://vault_decrypt/secret/osscse/etl-rsa`` |
| bucket | ``OSSCSE_DEMO_BUCKET`` | ``osscse-demo`` |
| work dir | ``OSSCSE_DEMO_WORK_DIR`` | ``/tmp/osscse-demo/etl`` |
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from airflow_provider_osscse.operators.local_to_encrypted_oss import LocalFilesystemToEncryptedOSSOperator

RUN_SLUG = "{{ run_id | replace(':', '') | replace('+', '') }}"
OBJECT_KEY = f"etl/customer_totals/{RUN_SLUG}.csv"


@dag(
    dag_id="vault_key_custody_etl",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["osscse", "example"],
    params={
        "bucket": Param(os.environ.get("OSSCSE_DEMO_BUCKET", "osscse-demo"), type="string"),
        "cmk": Param(os.environ.get("OSSCSE_KV_CMK", "vault-kv://vault_default/secret/osscse/etl-rsa"), type="string"),
        "decrypt_cmk": Param(
            os.environ.get("OSSCSE_KV_DECRYPT_CMK", "vault-kv://vault_decrypt/secret/osscse/etl-rsa"), type="string"
        ),
        "work_dir": Param(os.environ.get("OSSCSE_DEMO_WORK_DIR", "/tmp/osscse-demo/etl"), type="string"),
    },
    doc_md=__doc__,
)
def vault_key_custody_etl() -> None:
    @task
    def extract(work_dir: str, run_slug: str) -> str:
        """Stand-in for a source system: deterministic order records as JSON Lines."""
        path = Path(work_dir) / run_slug / "orders.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        customers = ["acme", "globex", "initech", "umbrella"]
        with path.open("w", encoding="utf-8") as out:
            for i in range(1, 41):
                out.write(json.dumps({"id": i, "customer": customers[i % 4], "amount_cents": 1000 + 37 * i}) + "\n")
        return str(path)

    @task
    def transform(orders_path: str) -> dict:
        """Totals per customer, written as CSV next to the input; its SHA-256 travels for the check."""
        totals: dict[str, int] = defaultdict(int)
        with open(orders_path, encoding="utf-8") as lines:
            for line in lines:
                row = json.loads(line)
                totals[row["customer"]] += row["amount_cents"]
        path = Path(orders_path).with_name("customer_totals.csv")
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["customer", "total_cents"])
            writer.writerows(sorted(totals.items()))
        return {"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}

    orders = extract("{{ params.work_dir }}", RUN_SLUG)
    totals = transform(orders)

    load = LocalFilesystemToEncryptedOSSOperator(
        task_id="load",
        source_path="{{ ti.xcom_pull(task_ids='transform')['path'] }}",
        dest_key=OBJECT_KEY,
        dest_bucket="{{ params.bucket }}",
        cmk="{{ params.cmk }}",
    )
    readback = EncryptedOSSToLocalFilesystemOperator(
        task_id="verify_with_decrypt_token",
        source_key=OBJECT_KEY,
        source_bucket="{{ params.bucket }}",
        dest_path="{{ params.work_dir }}/" + RUN_SLUG + "/readback.csv",
        decrypt_cmks=["{{ params.decrypt_cmk }}"],
    )

    @task
    def compare(transformed: dict, downloaded: dict) -> dict:
        digest = hashlib.sha256(Path(downloaded["path"]).read_bytes()).hexdigest()
        if digest != transformed["sha256"]:
            raise ValueError(f"{downloaded['uri']} did not decrypt to the transformed file")
        if downloaded["integrity"] != "verified":  # the default policy (require) makes this hold
            raise ValueError(f"{downloaded['uri']} was read without integrity verification")
        return {"uri": downloaded["uri"], "sha256": digest, "integrity": downloaded["integrity"]}

    totals >> load >> readback
    compare(totals, readback.output)


vault_key_custody_etl()
