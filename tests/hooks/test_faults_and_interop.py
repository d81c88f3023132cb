"""Injected server faults end in a correct object or none; oss2 CryptoBucket reads ours and vice versa."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oss2
import pytest
from oss2.crypto import RsaProvider

from airflow_provider_osscse.exceptions import OssUnavailableError, UnauthenticatedObjectError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

from .conftest import BUCKET, PART


def _crypto_bucket(hook: EncryptedOSSHook, rsa_ref: str) -> oss2.CryptoBucket:
    pem = Path(rsa_ref.removeprefix("rsa-file://")).read_text()
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(pem.encode(), None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    provider = RsaProvider(key_pair={"private_key": pem, "public_key": public.decode()}, mat_desc=hook.write_matdesc)
    settings = hook.get_conn().settings
    return oss2.CryptoBucket(
        settings.make_auth(), settings.resolved_endpoint, BUCKET, crypto_provider=provider, region=settings.region
    )


def _no_uploads_left(oss_env: Any) -> bool:
    return not list(oss_env.list_multipart_uploads(BUCKET))


def test_connection_reset_mid_part_is_retried_to_a_correct_object(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any
) -> None:
    hook = make_hook()
    data = os.urandom(3 * PART + 5)
    oss_env.inject_fault("PUT", path_contains="faults/reset", query_contains="partNumber=2", action="reset", times=1)
    hook.upload(io.BytesIO(data), "faults/reset")
    assert hook.read("faults/reset") == data and _no_uploads_left(oss_env)


def test_transient_500s_are_retried(make_hook: Callable[..., EncryptedOSSHook], oss_env: Any) -> None:
    hook = make_hook()
    data = os.urandom(3 * PART)
    oss_env.inject_fault("PUT", path_contains="faults/500", query_contains="partNumber", action="status:500", times=2)
    hook.upload(io.BytesIO(data), "faults/500")
    assert hook.read("faults/500") == data


def test_persistent_failure_aborts_leaving_no_object_and_no_parts(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any
) -> None:
    hook = make_hook()
    oss_env.inject_fault(
        "PUT", path_contains="faults/dead", query_contains="partNumber=3", action="status:500", times=50
    )
    with pytest.raises(OssUnavailableError) as caught:  # translated, one line; oss2's error is the cause
        hook.upload(io.BytesIO(os.urandom(4 * PART)), "faults/dead")
    assert isinstance(caught.value.__cause__, oss2.exceptions.ServerError) and caught.value.status == 500
    assert not hook.exists("faults/dead") and _no_uploads_left(oss_env)


def test_slow_responses_still_complete(make_hook: Callable[..., EncryptedOSSHook], oss_env: Any) -> None:
    hook = make_hook()
    data = os.urandom(3 * PART)
    oss_env.inject_fault("PUT", path_contains="faults/slow", query_contains="partNumber", action="delay:0.3", times=3)
    hook.upload(io.BytesIO(data), "faults/slow")
    assert hook.read("faults/slow") == data


@pytest.mark.parametrize("size", [1000, 3 * PART + 5])
def test_oss2_crypto_bucket_reads_our_objects(
    make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str, size: int
) -> None:
    hook = make_hook()
    data = os.urandom(size)
    hook.upload(io.BytesIO(data), f"interop/ours/{size}")
    crypto = _crypto_bucket(hook, rsa_ref)
    assert crypto.get_object(f"interop/ours/{size}").read() == data
    assert crypto.get_object(f"interop/ours/{size}", byte_range=(32, 700)).read() == data[32:701]


def test_we_read_oss2_crypto_bucket_objects_single_multipart_and_ranges(
    make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str
) -> None:
    hook = make_hook()
    crypto = _crypto_bucket(hook, rsa_ref)
    small = os.urandom(5000)
    crypto.put_object("interop/theirs/single", small)
    big = os.urandom(3 * PART + 5)
    context = oss2.models.MultipartUploadCryptoContext(len(big), PART)
    upload_id = crypto.init_multipart_upload("interop/theirs/multi", upload_context=context).upload_id
    parts = []
    for n, start in enumerate(range(0, len(big), PART), start=1):
        result = crypto.upload_part(
            "interop/theirs/multi", upload_id, n, big[start : start + PART], upload_context=context
        )
        parts.append(oss2.models.PartInfo(n, result.etag))
    crypto.complete_multipart_upload("interop/theirs/multi", upload_id, parts)
    lenient = make_hook(integrity="if-present")  # official-SDK objects carry no integrity tag
    assert lenient.read("interop/theirs/single") == small
    assert lenient.read("interop/theirs/multi") == big
    assert lenient.read("interop/theirs/multi", byte_range="-77") == big[-77:]
    with pytest.raises(UnauthenticatedObjectError, match="integrity='if-present'"):
        hook.read("interop/theirs/single")
    with pytest.raises(UnauthenticatedObjectError, match="integrity='if-present'"):
        make_hook(integrity="require").read("interop/theirs/single")
