"""The hook through the real paths not covered elsewhere: KMS CMKs, STS tokens, signature v1, progress.

* ``kms://`` CMKs with the local KMS server: round trips (single and multipart), rotation in KMS then
  ``hook.rewrap`` (KMS ``ReEncrypt``), the ``KeyVersionId`` recorded in ``x-oss-meta-osscse-cmk-version``.
* An ``oss`` connection with extra ``security_token`` against ``LocalOSSServer(security_token=...)``.
* Fault injection and oss2 ``CryptoBucket`` interop over ``signature_version: v1`` as well as v4.
* Task-log progress lines for a long multipart transfer.
"""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest
import structlog
from oss2.crypto import RsaProvider

from airflow_provider_osscse.exceptions import OssCredentialsError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.testing.oss_server import LocalOSSServer

from .conftest import BUCKET, PART

SIGNATURES = pytest.mark.parametrize("conn_id", ["oss_v4", "oss_v1"], ids=["v4", "v1"])
MIB = 2**20


@pytest.fixture
def kms_ref(oss_env: Any, osscse_kms_server: Any) -> str:
    """A fresh KMS key (tests rotate it) reached through connection ``kms_default``."""
    alias = f"alias/hook-{uuid.uuid4().hex[:8]}"
    osscse_kms_server.create_key(alias=alias)
    return f"kms://kms_default/{alias}"


def _primary_version(kms: Any, alias: str) -> str:
    from alibabacloud_kms20160120 import models
    from alibabacloud_kms20160120.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    client = Client(
        Config(
            access_key_id=kms.access_key_id,
            access_key_secret=kms.access_key_secret,
            endpoint=kms.endpoint,
            protocol="http",
            region_id=kms.region,
        )
    )
    return client.describe_key(models.DescribeKeyRequest(key_id=alias)).body.key_metadata.primary_key_version


# -- KMS through the core ---------------------------------------------------------------------


@SIGNATURES
@pytest.mark.parametrize("size", [5000, 3 * PART + 7], ids=["single", "multipart"])
def test_kms_alias_cmk_round_trips_single_and_multipart(
    make_hook: Callable[..., EncryptedOSSHook], kms_ref: str, conn_id: str, size: int
) -> None:
    hook = make_hook(conn_id, cmk=kms_ref)
    data = os.urandom(size)
    key = f"kms/{conn_id}/{size}"
    result = hook.upload(io.BytesIO(data), key)
    assert result.wrap_alg == "KMS/ALICLOUD" and result.parts == (1 if size < PART else 4)
    assert hook.read(key) == data and hook.read(key, byte_range="-33") == data[-33:]
    assert make_hook(conn_id, cmk=None, decrypt_cmks=[kms_ref]).read(key) == data


def test_upload_result_records_the_kms_key_version(
    make_hook: Callable[..., EncryptedOSSHook], kms_ref: str, osscse_kms_server: Any
) -> None:
    hook = make_hook(cmk=kms_ref)
    result = hook.upload(io.BytesIO(b"versioned"), "kms/version")
    version = _primary_version(osscse_kms_server, kms_ref.rpartition("kms_default/")[2])
    assert result.key_version == version
    assert hook.inspect("kms/version").key_version == version  # x-oss-meta-osscse-cmk-version


def test_kms_rotation_then_rewrap_reencrypts_to_the_new_version(
    make_hook: Callable[..., EncryptedOSSHook], kms_ref: str, osscse_kms_server: Any
) -> None:
    alias = kms_ref.rpartition("kms_default/")[2]
    hook = make_hook(cmk=kms_ref)
    data = os.urandom(2 * PART + 1)
    hook.upload(io.BytesIO(data), "kms/rotate")
    old_version = _primary_version(osscse_kms_server, alias)
    assert hook.rewrap("kms/rotate").status == "already-current"
    new_version = osscse_kms_server.rotate_key(alias)
    result = hook.rewrap("kms/rotate")
    assert (result.status, result.from_version, result.to_version) == ("rewrapped", old_version, new_version)
    assert hook.inspect("kms/rotate").key_version == new_version
    assert hook.read("kms/rotate") == data
    assert make_hook(cmk=kms_ref, integrity="require").read("kms/rotate") == data


def test_inspect_reports_the_kms_key_version_from_the_headers(
    make_hook: Callable[..., EncryptedOSSHook], kms_ref: str
) -> None:
    hook = make_hook(cmk=kms_ref)
    result = hook.upload(io.BytesIO(b"inspect me"), "kms/inspect")
    assert result.key_version and hook.inspect("kms/inspect").key_version == result.key_version


# -- STS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalOSSServer]:
    server = LocalOSSServer(
        "STS.local-oss", "sts-oss-secret", security_token="oss-sts-token", data_dir=tmp_path_factory.mktemp("sts-oss")
    )
    server.start()
    server.create_bucket("sts-bucket")
    try:
        yield server
    finally:
        server.stop()


def _sts_conn(monkeypatch: pytest.MonkeyPatch, server: LocalOSSServer, conn_id: str, token: str) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "oss",
                "schema": "sts-bucket",
                "extra": {
                    "auth_type": "AK",
                    "access_key_id": server.access_key_id,
                    "access_key_secret": "sts-oss-secret",
                    "region": server.region,
                    "endpoint": server.endpoint,
                    "security_token": token,
                },
            }
        ),
    )


@pytest.mark.parametrize("signature", ["v4", "v1"])
def test_sts_connection_uploads_and_downloads(
    sts_server: LocalOSSServer, rsa_ref: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signature: str
) -> None:
    _sts_conn(monkeypatch, sts_server, "oss_sts", "oss-sts-token")
    conn = json.loads(os.environ["AIRFLOW_CONN_OSS_STS"])
    conn["extra"]["signature_version"] = signature
    monkeypatch.setenv("AIRFLOW_CONN_OSS_STS", json.dumps(conn))
    hook = EncryptedOSSHook("oss_sts", cmk=rsa_ref, multipart_threshold=2 * PART, part_size=PART)
    data = os.urandom(3 * PART)
    hook.upload(io.BytesIO(data), f"sts/{signature}")
    assert hook.download(f"sts/{signature}", tmp_path / "out").size == len(data)
    assert (tmp_path / "out").read_bytes() == data


def test_wrong_security_token_is_refused_with_invalid_security_token(
    sts_server: LocalOSSServer, rsa_ref: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sts_conn(monkeypatch, sts_server, "oss_sts_wrong", "expired-or-wrong-token")
    hook = EncryptedOSSHook("oss_sts_wrong", cmk=rsa_ref)
    with pytest.raises(OssCredentialsError) as caught:  # translated, one line; oss2's error is the cause
        hook.upload(io.BytesIO(b"x"), "sts/refused")
    assert (caught.value.status, caught.value.code) == (403, "InvalidSecurityToken")
    assert isinstance(caught.value.__cause__, oss2.exceptions.OssError) and "security_token" in str(caught.value)
    assert "expired-or-wrong-token" not in str(caught.value)
    ok, message = hook.test_connection()
    assert not ok and "InvalidSecurityToken" in message


# -- signature v1 (and v4): faults and oss2 interop ------------------------------------------------


def _no_uploads_left(oss_env: Any) -> bool:
    return not list(oss_env.list_multipart_uploads(BUCKET))


@SIGNATURES
def test_connection_reset_mid_part_is_retried_to_a_correct_object(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, conn_id: str
) -> None:
    key = f"faults-extra/reset-{conn_id}"
    oss_env.inject_fault("PUT", path_contains=key, query_contains="partNumber=2", action="reset", times=1)
    data = os.urandom(3 * PART + 5)
    make_hook(conn_id).upload(io.BytesIO(data), key)
    assert make_hook(conn_id).read(key) == data and _no_uploads_left(oss_env)


@SIGNATURES
def test_transient_500s_are_retried(make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, conn_id: str) -> None:
    key = f"faults-extra/500-{conn_id}"
    oss_env.inject_fault("PUT", path_contains=key, query_contains="partNumber", action="status:500", times=2)
    data = os.urandom(3 * PART)
    make_hook(conn_id).upload(io.BytesIO(data), key)
    assert make_hook(conn_id).read(key) == data


def _crypto_bucket(hook: EncryptedOSSHook, rsa_ref: str, signature: str) -> oss2.CryptoBucket:
    from cryptography.hazmat.primitives import serialization

    pem = Path(rsa_ref.removeprefix("rsa-file://")).read_text()
    private = serialization.load_pem_private_key(pem.encode(), None)
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    provider = RsaProvider(key_pair={"private_key": pem, "public_key": public}, mat_desc=hook.write_matdesc)
    server = hook.get_conn().settings
    auth = oss2.Auth if signature == "v1" else oss2.AuthV4
    conn = json.loads(os.environ["AIRFLOW_CONN_OSS_V4"])["extra"]
    return oss2.CryptoBucket(
        auth(conn["access_key_id"], conn["access_key_secret"]),
        server.resolved_endpoint,
        BUCKET,
        crypto_provider=provider,
        region=server.region,
    )


@SIGNATURES
@pytest.mark.parametrize("size", [1000, 3 * PART + 5], ids=["single", "multipart"])
def test_oss2_crypto_bucket_and_hook_read_each_other(
    make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str, conn_id: str, size: int
) -> None:
    signature = conn_id.removeprefix("oss_")
    hook = make_hook(conn_id)
    crypto = _crypto_bucket(hook, rsa_ref, signature)
    data = os.urandom(size)
    ours, theirs = f"interop-extra/{conn_id}/ours-{size}", f"interop-extra/{conn_id}/theirs-{size}"
    hook.upload(io.BytesIO(data), ours)
    assert crypto.get_object(ours).read() == data
    assert crypto.get_object(ours, byte_range=(32, 700)).read() == data[32:701]
    if size < PART:
        crypto.put_object(theirs, data)
    else:
        context = oss2.models.MultipartUploadCryptoContext(len(data), PART)
        upload_id = crypto.init_multipart_upload(theirs, upload_context=context).upload_id
        parts = [
            oss2.models.PartInfo(
                n, crypto.upload_part(theirs, upload_id, n, data[o : o + PART], upload_context=context).etag
            )
            for n, o in enumerate(range(0, size, PART), start=1)
        ]
        crypto.complete_multipart_upload(theirs, upload_id, parts)
    lenient = make_hook(conn_id, integrity="if-present")  # official-SDK objects carry no integrity tag
    assert lenient.read(theirs) == data and lenient.read(theirs, byte_range="-77") == data[-77:]


# -- progress in the task log -----------------------------------------------------------------------


def _messages(events: list[dict[str, Any]]) -> list[str]:
    """The rendered text of captured structlog events (``log.info("%s", text)`` keeps its args apart)."""
    out = []
    for event in events:
        args = event.get("positional_args")
        out.append(event["event"] % tuple(args) if args else str(event["event"]))
    return out


def test_long_multipart_transfer_logs_bounded_progress_lines(
    make_hook: Callable[..., EncryptedOSSHook], tmp_path: Path
) -> None:
    """8 MiB (the reporting floor) in 1 MiB parts: a few INFO lines with bytes and percent, not one per chunk.

    Airflow 3's hook logger (``hook.log``) is a structlog logger writing to the task log directly,
    not through stdlib ``logging``, so pytest's ``caplog`` never sees it; structlog's
    ``capture_logs`` is its caplog.
    """
    hook = make_hook(multipart_threshold=MIB, part_size=MIB)
    data = os.urandom(8 * MIB + 5)
    with structlog.testing.capture_logs() as events:
        hook.upload(io.BytesIO(data), "progress/long")
        hook.download("progress/long", tmp_path / "long.bin")
    assert all(e["log_level"] == "info" for e in events if "progress/long:" in str(e.get("positional_args")))
    lines = _messages(events)
    uploads = [line for line in lines if line.startswith(f"upload oss://{BUCKET}/progress/long:")]
    downloads = [line for line in lines if line.startswith(f"download oss://{BUCKET}/progress/long:")]
    assert 2 <= len(uploads) <= 12 and 2 <= len(downloads) <= 12, lines
    assert any("(100%)" in line and "/8.0 MiB" in line for line in uploads), uploads
    assert all(" at " in line and "/s" in line for line in uploads + downloads)
