"""Rotate a Vault Transit CMK and rewrap every object under a prefix onto the new key version.

Only the wrapped data keys change; object contents are not re-encrypted. The DAG proves it:
``inventory`` records each object's key version and plaintext SHA-256, ``rotate_transit_key``
rotates the key in Vault, ``rewrap`` (a dry run of the whole prefix first, then the real one, mapped
with ``.partial().expand()`` over the *listing shards* of ``shards``: one task instance per
``objects_per_shard`` objects, so a prefix of millions spreads over the workers in a few hundred
tasks, not one per object) moves every object to the newest version, and ``verify`` checks that
every object now names that version and still decrypts to the same bytes. A re-run finds everything
``already-current`` without a key-service call per object. The demo's ``objects_per_shard`` is 2, so
its handful of objects makes several shards; use ~10,000 for real prefixes.

| setting | environment | embedded default |
|---|---|---|
| prefix | ``OSSCSE_ROTATION_PREFIX`` | ``transfer/`` (what ``encrypted_transfer`` wrote) |
| bucket | ``OSSCSE_DEMO_BUCKET`` | ``osscse-demo`` |
| CMK | ``OSSCSE_TRANSIT_CMK`` | ``vault-transit://vault_default/transit/osscse-demo`` |
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from urllib.parse import urlsplit

import pendulum
from airflow.sdk import Param, dag, task

from airflow_provider_osscse.operators.rewrap import EncryptedOSSListingShardsOperator, EncryptedOSSRewrapOperator


def _object_states(bucket: str, prefix: str, cmk: str) -> dict[str, dict]:
    """Key version and plaintext digest of every object under ``prefix`` (decrypts each one)."""
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    hook = EncryptedOSSHook("oss_default", decrypt_cmks=[cmk], integrity="require")
    states = {}
    for key in hook.list_keys(prefix, bucket):
        info = hook.inspect(key, bucket)
        digest = hashlib.sha256()
        for chunk in hook.stream(key, bucket):
            digest.update(chunk)
        states[key] = {"key_version": info.key_version, "sha256": digest.hexdigest()}
    return states


@dag(
    dag_id="cmk_rotation",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["osscse", "example"],
    params={
        "bucket": Param(os.environ.get("OSSCSE_DEMO_BUCKET", "osscse-demo"), type="string"),
        "prefix": Param(os.environ.get("OSSCSE_ROTATION_PREFIX", "transfer/"), type="string"),
        "cmk": Param(
            os.environ.get("OSSCSE_TRANSIT_CMK", "vault-transit://vault_default/transit/osscse-demo"), type="string"
        ),
        "objects_per_shard": Param(2, type="integer", minimum=1),
    },
    doc_md=__doc__,
)
def cmk_rotation() -> None:
    @task
    def inventory(bucket: str, prefix: str, cmk: str) -> dict:
        states = _object_states(bucket, prefix, cmk)
        if not states:
            raise ValueError(f"nothing to rotate under oss://{bucket}/{prefix}")
        return states

    @task
    def rotate_transit_key(cmk: str) -> str:
        """Rotate the Transit key named by ``vault-transit://<conn>/<mount>/<key>``; return ``vN``."""
        from airflow.providers.hashicorp.hooks.vault import VaultHook

        ref = urlsplit(cmk)
        if ref.scheme != "vault-transit":
            raise ValueError(f"cmk_rotation rotates Vault Transit keys; got {ref.scheme!r}")
        mount, _, name = ref.path.strip("/").rpartition("/")
        client = VaultHook(vault_conn_id=ref.netloc).get_conn()
        client.secrets.transit.rotate_key(name=name, mount_point=mount)
        latest = client.secrets.transit.read_key(name=name, mount_point=mount)["data"]["latest_version"]
        return f"v{latest}"

    dry_run = EncryptedOSSRewrapOperator(
        task_id="rewrap_dry_run",
        key="{{ params.prefix }}",
        bucket="{{ params.bucket }}",
        decrypt_cmks=["{{ params.cmk }}"],
        dry_run=True,
    )

    shards = EncryptedOSSListingShardsOperator(
        task_id="shards",
        prefix="{{ params.prefix }}",
        bucket="{{ params.bucket }}",
        objects_per_shard="{{ params.objects_per_shard }}",
    )

    @task
    def verify(before: dict, new_version: str, reports: list[dict], bucket: str, prefix: str, cmk: str) -> dict:
        after = _object_states(bucket, prefix, cmk)
        problems = [k for k in before if after.get(k, {}).get("sha256") != before[k]["sha256"]]
        problems += [k for k, s in after.items() if s["key_version"] != new_version]
        if problems:
            raise ValueError(f"after rotation to {new_version}: wrong content or version for {problems}")
        counts: Counter[str] = Counter()
        for index in range(len(reports)):  # indexed: iterating a mapped XCom probes one past the end
            counts.update(reports[index]["counts"])
        return {
            "objects": len(after),
            "key_version": new_version,
            "counts": dict(counts),
            "shards": len(reports),
            "versions_before": sorted({s["key_version"] or "?" for s in before.values()}),
        }

    before = inventory("{{ params.bucket }}", "{{ params.prefix }}", "{{ params.cmk }}")
    new_version = rotate_transit_key("{{ params.cmk }}")
    rewrap = EncryptedOSSRewrapOperator.partial(
        task_id="rewrap",
        bucket="{{ params.bucket }}",
        decrypt_cmks=["{{ params.cmk }}"],
    ).expand(shard=shards.output)
    before >> new_version >> dry_run >> shards
    verify(before, new_version, rewrap.output, "{{ params.bucket }}", "{{ params.prefix }}", "{{ params.cmk }}")


cmk_rotation()
