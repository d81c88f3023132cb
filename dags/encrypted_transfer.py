"""Local files -> encrypted OSS (Vault Transit CMK) -> sensor -> decrypted download -> checksum check.

Configuration: params (override per run with ``--conf``/``run_conf``) whose defaults come from the
environment, so the same file runs in ``make demo``, in the test suite and in a real deployment.

| param | environment default | embedded default |
|---|---|---|
| ``input_dir`` | ``OSSCSE_DEMO_INPUT_DIR`` | ``/tmp/osscse-demo/input`` |
| ``output_dir`` | ``OSSCSE_DEMO_OUTPUT_DIR`` | ``/tmp/osscse-demo/output`` |
| ``bucket`` | ``OSSCSE_DEMO_BUCKET`` | ``osscse-demo`` |
| ``cmk`` | ``OSSCSE_TRANSIT_CMK`` | ``vault-transit://vault_default/transit/osscse-demo`` |
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from airflow_provider_osscse.operators.local_to_encrypted_oss import LocalFilesystemToEncryptedOSSOperator
from airflow_provider_osscse.sensors.encrypted_oss_key import EncryptedOSSKeySensor

#: One prefix per run, from the run id made path-friendly.
RUN_SLUG = "{{ run_id | replace(':', '') | replace('+', '') }}"
PREFIX = f"transfer/{RUN_SLUG}/"


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dag(
    dag_id="encrypted_transfer",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["osscse", "example"],
    params={
        "input_dir": Param(os.environ.get("OSSCSE_DEMO_INPUT_DIR", "/tmp/osscse-demo/input"), type="string"),
        "output_dir": Param(os.environ.get("OSSCSE_DEMO_OUTPUT_DIR", "/tmp/osscse-demo/output"), type="string"),
        "bucket": Param(os.environ.get("OSSCSE_DEMO_BUCKET", "osscse-demo"), type="string"),
        "cmk": Param(
            os.environ.get("OSSCSE_TRANSIT_CMK", "vault-transit://vault_default/transit/osscse-demo"), type="string"
        ),
    },
    doc_md=__doc__,
)
def encrypted_transfer() -> None:
    upload = LocalFilesystemToEncryptedOSSOperator(
        task_id="encrypt_and_upload",
        source_path="{{ params.input_dir }}",
        dest_key=PREFIX,
        dest_bucket="{{ params.bucket }}",
        cmk="{{ params.cmk }}",
        oss_conn_id="oss_default",
    )
    wait = EncryptedOSSKeySensor(
        task_id="wait_for_encrypted_objects",
        bucket_key=PREFIX,
        bucket_name="{{ params.bucket }}",
        expected_wrap_alg="VAULT/TRANSIT",
        mode="reschedule",
        poke_interval=5,
        timeout=120,
    )
    download = EncryptedOSSToLocalFilesystemOperator(
        task_id="download_and_decrypt",
        source_key=PREFIX,
        source_bucket="{{ params.bucket }}",
        dest_path="{{ params.output_dir }}/" + RUN_SLUG,
        decrypt_cmks=["{{ params.cmk }}"],
        # integrity: the default (None) is the connection's "integrity" extra, else "require": an
        # untagged, altered or swapped object fails this task and leaves no file.
    )

    @task
    def compare_checksums(downloaded: list[dict], input_dir: str, output_dir: str) -> dict:
        """Fail unless every input file came back byte for byte (SHA-256 of each relative path), verified."""
        unverified = [r["uri"] for r in downloaded if r["integrity"] != "verified"]
        if unverified:
            raise ValueError(f"downloaded without integrity verification: {unverified}")
        source = _sha256_tree(Path(input_dir))
        back = _sha256_tree(Path(output_dir))
        if not source or source != back:
            raise ValueError(f"round trip differs for {sorted(set(source.items()) ^ set(back.items()))}")
        return {"files": len(source), "objects": [r["uri"] for r in downloaded], "identical": True}

    upload >> wait >> download
    compare_checksums(download.output, "{{ params.input_dir }}", "{{ params.output_dir }}/" + RUN_SLUG)


encrypted_transfer()
