"""The KMS confused deputy, tried through ``EncryptedOSSHook`` against the local OSS and KMS servers.

One KMS credential (connection ``kms_default``) may decrypt under two tenants' keys. An object
uploaded under ``alias/tenant-b`` is relabelled in place through plain oss2 (GET, then PUT with edited
headers, as anyone with write access to the bucket can) so its headers name tenant-a: in this
project's ``x-oss-meta-osscse-cmk`` header, or, as objects of earlier versions carried it, in the
matdesc. The tag stays valid (it binds content and name, not the CMK), so only KMS's answer tells the
keys apart. A hook configured for tenant-a only, under ``integrity='require'``, must refuse to read,
stream, download or rewrap it, and hand out no plaintext.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest

from airflow_provider_osscse.exceptions import KeyUnwrapError, KmsKeyMismatchError, NoMatchingKeyError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

CMK_HEADER = "x-oss-meta-osscse-cmk"
CMK_VERSION_HEADER = "x-oss-meta-osscse-cmk-version"
MATDESC_HEADER = "x-oss-meta-client-side-encryption-matdesc"
PART = 102_400


@pytest.fixture(scope="module")
def tenants(
    osscse_airflow_connections: dict[str, str], osscse_oss_server: Any, osscse_kms_server: Any
) -> Iterator[dict[str, Any]]:
    """A bucket, connection ``oss_kms_pin`` to it, and two tenants' aliases in one KMS."""
    bucket = f"kms-pin-{uuid.uuid4().hex[:8]}"
    osscse_oss_server.create_bucket(bucket)
    suffix = uuid.uuid4().hex[:8]
    aliases = {"a": f"alias/tenant-a-{suffix}", "b": f"alias/tenant-b-{suffix}"}
    key_ids = {t: osscse_kms_server.create_key(alias=alias) for t, alias in aliases.items()}
    saved = os.environ.get("AIRFLOW_CONN_OSS_KMS_PIN")
    os.environ["AIRFLOW_CONN_OSS_KMS_PIN"] = json.dumps(
        {
            "conn_type": "oss",
            "schema": bucket,
            "extra": {
                "access_key_id": osscse_oss_server.access_key_id,
                "access_key_secret": osscse_oss_server.access_key_secret,
                "region": osscse_oss_server.region,
                "endpoint": osscse_oss_server.endpoint,
            },
        }
    )
    yield {"bucket": bucket, "aliases": aliases, "key_ids": key_ids, "oss": osscse_oss_server}
    if saved is None:
        os.environ.pop("AIRFLOW_CONN_OSS_KMS_PIN", None)
    else:
        os.environ["AIRFLOW_CONN_OSS_KMS_PIN"] = saved


def _hook(tenants: dict[str, Any], tenant: str) -> EncryptedOSSHook:
    return EncryptedOSSHook(
        "oss_kms_pin",
        cmk=f"kms://kms_default/{tenants['aliases'][tenant]}",
        integrity="require",
        multipart_threshold=PART,
        part_size=PART,
    )


def _plain_bucket(tenants: dict[str, Any]) -> oss2.Bucket:
    oss = tenants["oss"]
    return oss2.Bucket(
        oss2.AuthV4(oss.access_key_id, oss.access_key_secret), oss.endpoint, tenants["bucket"], region=oss.region
    )


def _relabel_in_place(tenants: dict[str, Any], key: str, *, legacy: bool) -> None:
    """Rewrite the object under the same name with headers naming tenant-a (ciphertext unchanged)."""
    bucket = _plain_bucket(tenants)
    stored = bucket.get_object(key)
    body = stored.read()
    headers = {k: v for k, v in stored.headers.items() if k.lower().startswith("x-oss-meta-")}
    headers = {k.lower(): v for k, v in headers.items()}
    identity_a = f"kms:{tenants['aliases']['a']}"
    if legacy:  # how earlier versions of this package named the CMK: inside the matdesc
        version = headers.pop(CMK_VERSION_HEADER, None)
        assert headers.pop(CMK_HEADER) == f"kms:{tenants['aliases']['b']}"
        matdesc = {"osscse-cmk": identity_a, **({"osscse-cmk-version": version} if version else {})}
        headers[MATDESC_HEADER] = json.dumps(matdesc, separators=(",", ":"))
    else:
        assert headers[CMK_HEADER] == f"kms:{tenants['aliases']['b']}"
        headers[CMK_HEADER] = identity_a
    bucket.put_object(key, body, headers=headers)


@pytest.mark.parametrize("legacy", [False, True], ids=["cmk-header", "legacy-matdesc"])
@pytest.mark.parametrize("size", [5000, 2 * PART + 17], ids=["single", "multipart"])
def test_hook_for_tenant_a_refuses_a_tenant_b_object_relabelled_to_a(
    tenants: dict[str, Any], tmp_path: Path, legacy: bool, size: int
) -> None:
    data = os.urandom(size)
    key = f"pin/{uuid.uuid4().hex[:8]}"
    _hook(tenants, "b").upload(iter([data]), key)
    reader_a = _hook(tenants, "a")
    with pytest.raises(NoMatchingKeyError):  # as uploaded, the headers name tenant-b
        reader_a.read(key)
    _relabel_in_place(tenants, key, legacy=legacy)
    assert reader_a.inspect(key).cmk == f"kms:{tenants['aliases']['a']}"

    for attempt in (lambda: reader_a.read(key), lambda: list(reader_a.stream(key))):
        with pytest.raises(KeyUnwrapError) as caught:
            attempt()
        assert "KMS" in str(caught.value) or "candidate" in str(caught.value)
        assert caught.value.object_name == f"oss://{tenants['bucket']}/{key}"  # named on the provider's own error
        assert isinstance(caught.value, KmsKeyMismatchError), type(caught.value)
    destination = tmp_path / "out.bin"
    with pytest.raises(KeyUnwrapError):
        reader_a.download(key, destination)
    assert not destination.exists()
    assert list(tmp_path.iterdir()) == []  # no partial plaintext either


def test_hook_rewrap_for_tenant_a_refuses_a_relabelled_tenant_b_object(tenants: dict[str, Any]) -> None:
    """ReEncrypt would otherwise launder tenant-b's data key into a genuine tenant-a object."""
    key = f"pin/rewrap-{uuid.uuid4().hex[:8]}"
    _hook(tenants, "b").upload(iter([b"tenant b only " * 100]), key)
    _relabel_in_place(tenants, key, legacy=False)
    before = dict(_plain_bucket(tenants).head_object(key).headers)
    rotator_a = _hook(tenants, "a")
    refused: KeyUnwrapError | None = None
    try:
        result = rotator_a.rewrap(key)
    except KeyUnwrapError as error:
        refused = error
    if refused is not None:
        assert tenants["key_ids"]["b"] in str(refused) or "candidate" in str(refused)
    else:
        assert result.status == "failed" and tenants["key_ids"]["b"] in (result.error or "")
    after = dict(_plain_bucket(tenants).head_object(key).headers)
    assert after.get("ETag") == before.get("ETag")  # the object was not rewritten
    with pytest.raises(KeyUnwrapError):
        rotator_a.read(key)


def test_hook_for_tenant_a_still_reads_and_rewraps_its_own_objects(
    tenants: dict[str, Any], osscse_kms_server: Any
) -> None:
    data = os.urandom(3000)
    key = f"pin/own-{uuid.uuid4().hex[:8]}"
    hook = _hook(tenants, "a")
    hook.upload(iter([data]), key)
    assert hook.read(key) == data
    osscse_kms_server.rotate_key(tenants["aliases"]["a"])
    assert hook.rewrap(key).status == "rewrapped"
    assert hook.read(key) == data
